"""Click-to-chat links: wa.me builder, short links, QR codes, snippets, clicks, attribution."""
