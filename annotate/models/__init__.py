"""The SQLAlchemy models, one module per concept; imported here so the
metadata is complete wherever `annotate.models` is imported."""
from .assist import AssistModel, ItemEmbedding, MLBackend, Prediction
from .audit import AuditEntry
from .base import Base, utcnow
from .item import GoldAnswer, Item
from .job import BackgroundJob
from .ledger import LedgerEntry, PayrollRun
from .project import ContentCategory, Project
from .score import AnnotatorScore, AssignmentScore, ItemScore, ProjectScore
from .skill import ProjectSkill, Skill, SkillLevel, SkillLevelChange
from .team import Membership, Team
from .user import ApiToken, Profile, User
from .work import Annotation, Appeal, Assignment, MicroTask, MicroTaskItem

__all__ = [
    "Annotation", "ApiToken", "Appeal", "AssistModel", "Assignment", "AssignmentScore", "MLBackend",
    "AnnotatorScore", "AuditEntry", "BackgroundJob", "Base", "ContentCategory", "GoldAnswer",
    "Item", "ItemEmbedding", "ItemScore", "LedgerEntry", "Membership", "MicroTask", "MicroTaskItem",
    "PayrollRun", "Prediction", "Profile", "Project", "ProjectScore", "ProjectSkill",
    "Skill", "SkillLevel", "SkillLevelChange", "Team", "User", "utcnow",
]
