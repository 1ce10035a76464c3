"""FHIR search over the store, one module per part:

- ``definitions``: the search parameters of every R4 type (``parameters.json``, derived from the R4
  specification by scripts/derive_search_parameters.py) and the patient compartment;
- ``extract``: the index rows a resource's values give, in the forms search compares;
- ``units``: UCUM units in canonical form, for quantity search;
- ``index``: writing those rows beside each version, and rebuilding them when the definitions change;
- ``query``: search parameters parsed, checked and turned into one SQL query;
- ``bundle``: a result as a FHIR searchset Bundle with its paging links.
"""
