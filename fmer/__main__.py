import sys

from fmer.cli import main

sys.exit(main())
