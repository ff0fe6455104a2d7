"""Entity linking: communications tied to the contacts, accounts and opportunities they
concern, with a confidence and the evidence (plain code: no broker, no store, no I/O).

`activity.activity_of` reads a communication shard, `activity.lookup_keys` says what to
fetch, `rules.candidates` proposes links, `decisions.decide` keeps, asks or drops them.
"""
