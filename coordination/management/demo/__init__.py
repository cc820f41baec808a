"""The synthetic demo data loaded by `python manage.py seed_demo`.

`plan` says what to create (pure data, deterministic from `random.Random(42)`); `stories`
plays each patient's pathway forward through the services. Every name, number and address is
fictional: practitioners' RPPS numbers start with 9999, patients' INS use the test OID.
"""
