"""Data-subject rights and accountability under UU PDP: export, erasure, the access audit."""
