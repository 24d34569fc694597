"""chaostoolkit scenarios: loading, running through chaoslib, and the activities they call."""
