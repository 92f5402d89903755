"""kseries: CI for Linux kernel patch series."""
