"""The synthetic organization-trail generator behind scripts/generate_sample.py.

Modules, from data to output (each imports only those before it):

- `actions`: what CloudTrail makes of a call (read, global, data event, the detector's key).
- `clock`: time units and CloudTrail's timestamp formats.
- `draws`: identifiers, addresses and weights drawn from a seeded `random.Random`.
- `profiles`: the population as data: action sets, user agents, people, attacker addresses.
- `world`: the organization's accounts and steady principals, built from the profiles.
- `traffic`: activity patterns, runs, each hour's steady events, early coverage.
- `scenarios`: the attacks and benign novelty injected in the live phase, with ground truth.
- `details`, `render`: an event as a CloudTrail record.
- `writer`: delivery objects in the organization-trail layout, or one large object.

Every random draw comes from a `random.Random` seeded from `--seed` and a purpose
(`"7:world"`, `"7:hour:12"`, ...), in a fixed order: moving code must not reorder draws, or
the output changes.
"""
