"""The HTML report of a file of alerts (`cloudtrail-anomaly report`): see `html.py`."""
