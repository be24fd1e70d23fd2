"""The contract layer: every quirk of T/BAX 0006.4-2023 lives here."""
