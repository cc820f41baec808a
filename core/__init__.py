"""What every app shares and no domain owns. Imports no project app."""
