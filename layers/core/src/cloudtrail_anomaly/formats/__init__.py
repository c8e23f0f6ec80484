"""Other shapes of the alert, for the tools analysts work in.

Every format is a pure function of the alert's JSON document (`Alert.to_dict()`, the contract),
so a sink can put any of them on the wire from what the outbox holds, whenever it was staged:
`cim` (the flat Splunk CIM Alerts fields, also part of every alert), `ocsf` (an OCSF Detection
Finding), `asff` (an AWS Security Finding for Security Hub).
"""
