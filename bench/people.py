"""The accounts every data benchmark starts from, in an emptied schema."""
from __future__ import annotations


def fresh_schema_with_people(annotators: int) -> tuple[int, int, int]:
    """Drop and create the tables, then an operator, a team with a requester, and `annotators`
    annotators; return (requester, team, first annotator's id). Call inside an app context."""
    from annotate.extensions import db
    from annotate.models import Base
    from annotate.services import accounts, teams

    Base.metadata.drop_all(db.engine)
    Base.metadata.create_all(db.engine)
    operator = accounts.create_user("op@bench.org", "Op", "benchmark pw", roles=("operator",))
    team = teams.create_team(operator, "Bench")
    accounts.create_user("req@bench.org", "Req", "benchmark pw")
    requester = teams.add_member(operator, team, "req@bench.org")
    first = None
    for n in range(annotators):
        user = accounts.create_user(f"ann{n}@bench.org", f"Annotator {n}", "benchmark pw")
        first = user if first is None else first
    return requester, team, first
