"""Theme discovery and the digest: embeddings, clustering, naming, composition, rendering."""
