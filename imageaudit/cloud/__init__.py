"""Acting on clouds when an image is withdrawn: find every copy of it and the instances started
from it, and contain them the way the federation's incident procedure asks (snapshot, isolate,
never destroy), verifying each step by reading the cloud's state back.

- :mod:`~imageaudit.cloud.model`: the vocabulary (targets, objects, steps, records);
- :mod:`~imageaudit.cloud.steps`: runs a plan step by step, idempotently, into an action log;
- :mod:`~imageaudit.cloud.actionlog`: the JSON Lines action log kept for the CSIRT;
- :mod:`~imageaudit.cloud.openstack` and :mod:`~imageaudit.cloud.aws`: the providers
  (openstacksdk, boto3);
- :mod:`~imageaudit.cloud.sync`: the site agent, containing what the catalogue withdrew.
"""
