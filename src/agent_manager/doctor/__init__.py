"""`doctor`: every check of the machine and the workspace, one verdict each."""
