"""Showing results: tables printed to the terminal and plots written as PNG."""
