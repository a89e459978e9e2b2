"""The demo a newcomer sees on first start: an operator, a requester team with
a sample project, and two annotators."""
from __future__ import annotations

import secrets

from sqlalchemy import func, select

from ..extensions import db
from ..models import Item, Membership, Project, Team, User
from .accounts import create_user
from .ingest import content_hash

SAMPLE_CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="sentiment" toName="text" choice="single" showInLine="true">
    <Choice value="Positive" hotkey="1"/>
    <Choice value="Negative" hotkey="2"/>
    <Choice value="Neutral" hotkey="3"/>
  </Choices>
</View>"""

SAMPLE_TEXTS = [
    "The battery lasts two full days, better than promised.",
    "Arrived broken and support never answered my emails.",
    "It does what it says. Nothing more, nothing less.",
    "Setup took five minutes and it has worked flawlessly since.",
    "The screen scratches if you look at it.",
    "Delivery was on the day they said.",
    "I would buy this again without thinking twice.",
    "Stopped charging after a week; returned it.",
    "The manual is in English and French.",
    "Quiet, fast and cheaper than the alternatives.",
    "The strap broke on the first hike.",
    "Colour matches the photos on the website.",
]


def seed_if_empty() -> list[dict] | None:
    """Create the demo and return its logins, or None if there are users already."""
    if db.session.scalar(select(func.count(User.id))):
        db.session.rollback()
        return None
    people = [
        ("operator", "operator@demo.local", "Olive Operator", ("operator",)),
        ("requester", "requester@demo.local", "Rami Requester", ("requester",)),
        ("annotator", "ana@demo.local", "Ana Annotator", ()),
        ("annotator", "ben@demo.local", "Ben Annotator", ()),
    ]
    logins = []
    ids = {}
    for role, email, name, roles in people:
        password = secrets.token_urlsafe(9)
        ids[email] = create_user(email, name, password, roles=("annotator", *roles))
        logins.append({"role": role, "email": email, "password": password})
    with db.transaction() as session:
        team = Team(name="Demo ML team")
        session.add(team)
        session.flush()
        session.add(Membership(team_id=team.id, user_id=ids["requester@demo.local"]))
        project = Project(
            team_id=team.id, created_by_id=ids["requester@demo.local"], title="Product review sentiment",
            description="Is each product review positive, negative or neutral?",
            label_config=SAMPLE_CONFIG, config_kind="text_classification",
            instructions="Choose the sentiment the **reviewer** expresses about the product.\n\n"
                         "Press 1, 2 or 3 to choose.",
            overlap=2, max_overlap=2, items_per_micro_task=4, pay_per_micro_task=20, currency="USD",
            estimated_seconds_per_micro_task=40,
        )
        session.add(project)
        session.flush()
        for text in SAMPLE_TEXTS:
            data = {"text": text}
            session.add(Item(project_id=project.id, data=data, content_hash=content_hash(data)))
    return logins
