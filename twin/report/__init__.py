"""Reports a person opens in a browser: matplotlib figures embedded in one HTML file."""
