"""From run logs to the paper's figures and tables, and the experiment grid the workflow runs."""
