"""The Lens query language (SPEC §7): one line of qualifiers, words and "phrases".

`query_parse(text)` reads it with a grammar (grammar.lark, lark's LALR parser) into a
small tree (nodes.py) or raises QuerySyntaxError naming the position and what was
expected; `query_condition(query, vendor=...)` compiles the tree into one `Q` over
AuditEvent. The FilterSet's `q` filter runs both, so every list, export and trace
filter takes the language. The qualifiers are stated once, in audit/explore/vocabulary.py.
"""

from audit.explore.query.compiler import query_condition
from audit.explore.query.parser import QuerySyntaxError, query_parse

__all__ = ["QuerySyntaxError", "query_condition", "query_parse"]
