"""`python -m audit.verify EXPORT.ndjson`: the offline verifier of evidence exports (SPEC §5).

Kept at this path because it is a public command; the verifier is audit/integrity/offline.py.
"""

import sys

from audit.integrity.offline import main

if __name__ == "__main__":
    sys.exit(main())
