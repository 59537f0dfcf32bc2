"""The fleet inventory: customers, NTUs, upstream nodes and service profiles, loaded and
validated from YAML or CSV.
"""
