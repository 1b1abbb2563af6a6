"""The policy database (load profiles, parameter sets, runs, policies) and the policy engine."""
