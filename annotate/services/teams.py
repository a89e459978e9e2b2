"""Teams of requesters and who belongs to them."""
from __future__ import annotations

from sqlalchemy import select

from ..extensions import db
from ..models import Membership, Team, User
from . import audit
from .accounts import require_operator
from .errors import Conflict, Invalid, NotFound


def create_team(actor_id: int, name: str) -> int:
    name = name.strip()
    if not name:
        raise Invalid("a team needs a name", field="name")
    if len(name) > 120:
        raise Invalid("the team name is longer than 120 characters", field="name")
    with db.transaction() as session:
        require_operator(session, actor_id)
        if session.scalar(select(Team.id).where(Team.name == name)) is not None:
            raise Conflict(f"a team called {name!r} already exists", field="name")
        team = Team(name=name)
        session.add(team)
        session.flush()
        audit.record(session, actor_id=actor_id, action="create_team", target_type="team", target_id=team.id)
        return team.id


def add_member(actor_id: int, team_id: int, email: str) -> int:
    """Put a user in a team. Belonging to a team makes them a requester."""
    email = email.strip().lower()
    with db.transaction() as session:
        require_operator(session, actor_id)
        team = session.get(Team, team_id)
        if team is None:
            raise NotFound(f"no team {team_id}")
        user = session.scalar(select(User).where(User.email == email))
        if user is None:
            raise NotFound(f"no account for {email}", field="email")
        if session.scalar(select(Membership.id).where(Membership.team_id == team_id, Membership.user_id == user.id)):
            raise Conflict(f"{email} is already in {team.name}", field="email")
        session.add(Membership(team_id=team_id, user_id=user.id))
        if not user.is_requester:
            user.is_requester = True
            audit.record(session, actor_id=actor_id, action="grant_requester", target_type="user",
                         target_id=user.id, team_id=team_id)
        audit.record(session, actor_id=actor_id, action="add_member", target_type="team",
                     target_id=team_id, user_id=user.id)
        return user.id


def remove_member(actor_id: int, team_id: int, user_id: int) -> None:
    with db.transaction() as session:
        require_operator(session, actor_id)
        membership = session.scalar(
            select(Membership).where(Membership.team_id == team_id, Membership.user_id == user_id)
        )
        if membership is None:
            raise NotFound(f"user {user_id} is not in team {team_id}")
        session.delete(membership)
        audit.record(session, actor_id=actor_id, action="remove_member", target_type="team",
                     target_id=team_id, user_id=user_id)


def team_ids_of(user_id: int) -> list[int]:
    return list(db.session.scalars(select(Membership.team_id).where(Membership.user_id == user_id)))


def list_teams() -> list[Team]:
    return list(db.session.scalars(select(Team).order_by(Team.name)))
