"""Database backends: Django's, with the settings this project relies on fixed in code."""
