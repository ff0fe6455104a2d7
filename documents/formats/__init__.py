"""One reader per file format; each writes into a `Draft` and raises `Refusal` for a bad file."""
