"""package layer."""
