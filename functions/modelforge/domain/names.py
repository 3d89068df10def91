"""What a machine may be called, shared by the data contract (the importer) and the API's request schemas.

Standard library only: ``modelforge.schemas`` imports it, and the API's zip functions have no pandas.
"""

from __future__ import annotations

# Machine names become S3 partition values and DynamoDB keys: no slashes, no dots at the start, bounded length.
MACHINE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_\-.]{0,63}$"
