"""Safety guards: target allowlists and blast radius (policy), the fault ledger, signal handling."""
