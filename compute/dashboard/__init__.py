"""The operators' compute dashboard: charts of every cluster, node and card
over the last hour or day, and the card quota each service holds. Server-side
SVG, no JavaScript and nothing fetched from elsewhere."""
