"""Skill levels from evidence: hand-computed values, the prior, adjustments
with reasons, qualification grants and the set-based bulk recomputation.

The formula (annotate.scoring.skills), used in the arithmetic below:
    level = round_half_up(100 * (3 * gold_right + agreed + 5) / (3 * gold_total + compared + 10))
    confidence = (3 * gold_total + compared) / (3 * gold_total + compared + 10)
"""
from __future__ import annotations

import pytest
from sqlalchemy import event, func, select

from annotate.extensions import db
from annotate.models import AuditEntry, ProjectSkill, SkillLevelChange
from annotate.scoring import skills as formula
from annotate.services import scoring, skills, work as work_service
from annotate.services.errors import Conflict, Forbidden, Invalid
from tests.conftest import choice

P, N = choice("Positive"), choice("Negative")


def _level(annotator_id: int, skill_name: str) -> skills.LevelView:
    return next(v for v in skills.levels_of(annotator_id) if v.skill == skill_name)


def _scored(app, work, project: int, answers: dict, gold: dict | None = None) -> None:
    done = work.micro_task(project, answers, gold=gold)
    with app.app_context():
        scoring.score_micro_task(done.micro_task_id)


def test_the_formula_on_known_counts():
    level, confidence = formula.levels([0, 2, 45, 1, 0], [0, 2, 52, 1, 1], [0, 0, 120, 2, 2], [0, 0, 140, 3, 3])
    # No evidence: the prior's mean, 100 * 5 / 10 = 50, with confidence 0.
    # 2 of 2 gold: 100 * (6 + 5) / (6 + 10) = 68.75 -> 69, not 100; confidence 6 / 16.
    # 45 of 52 gold, 120 of 140 agreed: 100 * (135 + 120 + 5) / (156 + 140 + 10) = 84.97 -> 85; confidence 296 / 306.
    # 1 of 1 gold, 2 of 3 agreed: 100 * (3 + 2 + 5) / (3 + 3 + 10) = 62.5 -> 63 (half up).
    # 0 of 1 gold, 2 of 3 agreed: 100 * (0 + 2 + 5) / 16 = 43.75 -> 44.
    assert level.tolist() == [50, 69, 85, 63, 44]
    assert confidence.round(4).tolist() == [0.0, 0.375, 0.9673, 0.375, 0.375]
    # Floor, then offset, clipped: max(44, 70) + 5 = 75; max(85, 0) + 30 -> 100.
    assert formula.final_levels([44, 85], [70, 0], [5, 30]).tolist() == [75, 100]


def test_levels_match_hand_computed_values(app, work):
    ana, ben, cat = work.annotators(3)
    with app.app_context():
        sentiment = skills.create_skill(work.requester.person.id, "Sentiment", "telling praise from complaint")
    reviews = work.project(config_kind="text_classification")
    tweets = work.project()  # kind "other": only the named skill draws on it
    with app.app_context(), db.transaction() as session:
        session.add_all([ProjectSkill(project_id=reviews, skill_id=sentiment.id, min_level=0),
                         ProjectSkill(project_id=tweets, skill_id=sentiment.id, min_level=0)])
    # Item 0 is gold (Positive). Majority consensus: item 1 Positive, item 2 Negative, item 3 Negative.
    _scored(app, work, reviews, {ana: [P, P, N, P], ben: [P, P, N, N], cat: [N, P, P, N]}, gold={0: P})
    # Items 0 and 1 are gold (Positive, Negative); item 2's consensus is Positive (both said so).
    _scored(app, work, tweets, {ana: [P, N, P], ben: [P, P, P]}, gold={0: P, 1: N})
    with app.app_context():
        # Three annotators in two skills each (cat did no tweets, but reviews count for Sentiment too).
        assert skills.recompute_levels() == {"levels": 6, "changed": 6, "annotators": 3}
        # Text classification draws on `reviews` only. Ana: 1 of 1 gold, agreed on items 1 and 2 of 3:
        # 100 * (3*1 + 2 + 5) / (3*1 + 3 + 10) = 62.5 -> 63.
        text = _level(ana, "Text classification")
        assert (text.level, text.confidence) == (63, 0.375)
        assert text.words == "63: 1 gold item on 1 project, 1 right; agreed with consensus on 2 of 3 items"
        # Sentiment draws on both. Ana: gold 1 + 2 = 3 of 3, agreed 2 + 1 = 3 of 3 + 1 = 4:
        # 100 * (3*3 + 3 + 5) / (3*3 + 4 + 10) = 100 * 17 / 23 = 73.9 -> 74; confidence 13 / 23.
        mine = _level(ana, "Sentiment")
        assert (mine.level, mine.confidence) == (74, round(13 / 23, 4))
        assert mine.words == "74: 3 gold items on 2 projects, 3 right; agreed with consensus on 3 of 4 items"
        assert mine.evidence | {"words": None} == {
            "gold_right": 3, "gold_total": 3, "agreed": 3, "compared": 4, "projects": 2, "computed": 74,
            "prior": {"right": 5, "total": 10}, "gold_weight": 3, "skill_version": 1, "words": None}
        # Ben: gold 1 of 1 + 1 of 2 = 2 of 3, agreed 3 of 3 + 1 of 1 = 4 of 4:
        # 100 * (3*2 + 4 + 5) / (3*3 + 4 + 10) = 100 * 15 / 23 = 65.2 -> 65.
        assert _level(ben, "Sentiment").level == 65
        # Cat: 0 of 1 gold, agreed on items 1 and 3: 100 * (0 + 2 + 5) / 16 = 43.75 -> 44.
        assert _level(cat, "Sentiment").level == _level(cat, "Text classification").level == 44
        # Each level's first value is its first history entry.
        assert [(c.level, c.reason) for c in mine.history] == [(74, "recomputed from evidence")]


def test_a_few_right_answers_do_not_give_100(app, work):
    ana, ben = work.annotators(2)
    project = work.project(config_kind="text_classification")
    _scored(app, work, project, {ana: [P, P], ben: [P, P]}, gold={0: P})
    with app.app_context():
        skills.recompute_levels([ana])
        # 1 of 1 gold and 1 of 1 agreed: 100 * (3 + 1 + 5) / (3 + 1 + 10) = 64.3 -> 64, far from 100.
        level = _level(ana, "Text classification")
        assert (level.level, level.confidence) == (64, round(4 / 14, 4))
        assert skills.levels_of(ben) == []  # only those asked for were recomputed


def test_recomputing_without_new_evidence_changes_nothing(app, work):
    ana, ben = work.annotators(2)
    project = work.project(config_kind="text_classification")
    _scored(app, work, project, {ana: [P, N], ben: [P, P]}, gold={0: P})
    with app.app_context():
        skills.recompute_levels()
        assert skills.recompute_levels() == {"levels": 2, "changed": 0, "annotators": 0}
        assert db.session.scalar(select(func.count(SkillLevelChange.id))) == 2


def test_an_adjustment_needs_a_reason_is_logged_and_survives_recomputation(app, work):
    ana, ben = work.annotators(2)
    operator = work.operator.id
    project = work.project(config_kind="text_classification")
    _scored(app, work, project, {ana: [P, P], ben: [P, P]}, gold={0: P})
    with app.app_context():
        skills.recompute_levels()
        text = _level(ana, "Text classification")
        assert text.level == 64  # as above
        for reason in ("", "   ", None):
            with pytest.raises(Invalid) as refused:
                skills.adjust_level(operator, ana, text.skill_id, 80, reason)
            assert refused.value.field == "reason"
        with pytest.raises(Invalid) as refused:
            skills.adjust_level(operator, ana, text.skill_id, 101, "typo")
        assert refused.value.field == "level"
        with pytest.raises(Forbidden):
            skills.adjust_level(ben, ana, text.skill_id, 80, "I like her")
        assert _level(ana, "Text classification").level == 64  # nothing stored by the refusals

        adjusted = skills.adjust_level(operator, ana, text.skill_id, 80, "passed our in-house sentiment test")
        assert adjusted.level == 80
        assert adjusted.evidence["adjustment"]["offset"] == 16  # 80 - 64
        assert adjusted.words.endswith("; +16 by an operator: passed our in-house sentiment test")
        change = adjusted.history[0]
        assert (change.level, change.reason, change.changed_by) == (80, "passed our in-house sentiment test",
                                                                   "Test Person")
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "adjust_skill_level"))
        assert (entry.actor_id, entry.target_id, entry.reason) == (operator, ana, "passed our in-house sentiment test")
        assert entry.details | {"skill_id": None} == {"skill": "Text classification", "skill_id": None,
                                                      "level_from": 64, "level_to": 80, "offset": 16}
        db.session.rollback()
        # Redis has the new level for matching.
        assert work_service.dispatcher().r.hget(f"d:a:{ana}:skills", text.skill_id) == b"80"

    # New evidence: ana gets the gold item wrong and disagrees once.
    _scored(app, work, project, {ana: [N, N], ben: [P, P]}, gold={0: P})
    with app.app_context():
        skills.recompute_levels([ana])
        # Now 1 of 2 gold, agreed 1 of 2: 100 * (3 + 1 + 5) / (6 + 2 + 10) = 50, plus the kept offset 16 = 66.
        after = _level(ana, "Text classification")
        assert (after.level, after.evidence["computed"], after.evidence["adjustment"]["offset"]) == (66, 50, 16)
        assert [c.level for c in after.history] == [66, 80, 64]


def test_an_operator_can_give_a_level_without_evidence(app, work):
    (ana,) = work.annotators(1)
    with app.app_context():
        medical = skills.create_skill(work.operator.id, "Medical terminology")
        view = skills.adjust_level(work.operator.id, ana, medical.id, 75, "certified nurse, checked by phone")
        # No evidence gives 50; the offset is 25, and it stays when levels are recomputed.
        assert (view.level, view.confidence, view.evidence["adjustment"]["offset"]) == (75, 0.0, 25)
        skills.recompute_levels()
        assert _level(ana, "Medical terminology").level == 75


def test_a_qualification_pass_grants_the_projects_skills(app, work):
    ana, ben = work.annotators(2)
    with app.app_context():
        sentiment = skills.create_skill(work.requester.person.id, "Sentiment")
    project = work.project(qualification_gold_count=2, qualification_min_accuracy=0.5)
    with app.app_context(), db.transaction() as session:
        session.add(ProjectSkill(project_id=project, skill_id=sentiment.id, min_level=70))
    # The qualification score is written at submit (work._score_qualification); here straight from answers.
    done = work.micro_task(project, {ana: [P, N], ben: [N, P]}, gold={0: P, 1: N}, qualification=True, status="open")
    with app.app_context(), db.transaction() as session:
        from annotate.models import Assignment, MicroTask, Project
        project_row = session.get(Project, project)
        for annotator, answers in ((ana, [P, N]), (ben, [N, P])):
            assignment = session.get(Assignment, done.assignments[annotator])
            work_service._score_qualification(session, project_row, assignment, [
                {"item_id": item, "result": result} for item, result in zip(done.item_ids, answers)])
        assert session.get(MicroTask, done.micro_task_id).is_qualification
    with app.app_context():
        skills.qualification_scored(ana, project)
        skills.qualification_scored(ben, project)
        # Ana: 2 of 2 gold gives 100 * (6 + 5) / 16 = 69, lifted to the project's minimum, 70.
        granted = _level(ana, "Sentiment")
        assert (granted.level, granted.evidence["computed"]) == (70, 69)
        assert granted.words == ("70: 2 gold items on 1 project, 2 right; "
                                 "at least 70 for passing the qualification of 'Reviews'")
        assert granted.history[0].reason == "passed a qualification"
        # Ben failed (0 of 2): his evidence counts, with no floor: 100 * 5 / 16 = 31.25 -> 31.
        failed = _level(ben, "Sentiment")
        assert (failed.level, "granted" in failed.evidence) == (31, False)


def test_bulk_recomputation_is_set_based(app, work):
    """The number of statements does not grow with the number of annotators."""
    project = work.project(config_kind="text_classification")

    def statements(n: int) -> int:
        people = work.annotators(n)
        _scored(app, work, project, {a: [P, P] for a in people}, gold={0: P})
        seen = []
        with app.app_context():
            listener = lambda *args: seen.append(args[2])  # noqa: E731
            event.listen(db.engine, "before_cursor_execute", listener)
            try:
                skills.recompute_levels(people)
            finally:
                event.remove(db.engine, "before_cursor_execute", listener)
        return len(seen)

    statements(1)  # the first run also makes the platform's skill for the kind
    assert statements(2) == statements(12)


def test_skills_are_named_once_and_only_by_requesters_and_operators(app, work):
    (ana,) = work.annotators(1)
    requester = work.requester.person.id
    with app.app_context():
        skills.create_skill(requester, "  Medical   terminology ")
        assert [s.name for s in skills.list_skills() if not s.config_kind] == ["Medical terminology"]
        assert {s.config_kind for s in skills.list_skills() if s.config_kind} == {
            "text_classification", "multi_label", "named_entities", "image_classification", "bounding_boxes",
            "polygons", "rating", "transcription"}
        for name, error, field in (("", Invalid, "name"), ("medical TERMINOLOGY", Conflict, "name"),
                                   ("Bounding boxes", Conflict, "name"), ("x" * 81, Invalid, "name")):
            with pytest.raises(error) as refused:
                skills.create_skill(requester, name)
            assert refused.value.field == field
        with pytest.raises(Forbidden):
            skills.create_skill(ana, "Spelling")


# --- how a recomputation reads what it stored ------------------------------------------------


def _ana_at_64(app, work) -> tuple[int, int, int]:
    """Ana with 1 of 1 gold right and 1 of 1 agreed (64, as above), her level stored; (ana, ben, project)."""
    ana, ben = work.annotators(2)
    project = work.project(config_kind="text_classification")
    _scored(app, work, project, {ana: [P, P], ben: [P, P]}, gold={0: P})
    with app.app_context():
        skills.recompute_levels([ana])
    return ana, ben, project


def test_new_evidence_that_leaves_the_level_is_written_without_a_history_entry(app, work):
    ana, ben, project = _ana_at_64(app, work)
    (cat,) = work.annotators(1)
    with app.app_context():
        before = _level(ana, "Text classification")
        assert before.words == "64: 1 gold item on 1 project, 1 right; agreed with consensus on 1 of 1 item"
        assert skills.recompute_levels([ana]) == {"levels": 1, "changed": 0, "annotators": 0}
        assert _level(ana, "Text classification").updated_at == before.updated_at  # nothing rewritten

    # Ben and Cat agree on 8 items; Ana with them on 5: 1 of 1 gold, agreed 6 of 9:
    # 100 * (3 + 6 + 5) / (3 + 9 + 10) = 63.6 -> 64 again, from more evidence.
    _scored(app, work, project, {ana: [P, P, P, P, P, N, N, N], ben: [P] * 8, cat: [P] * 8})
    with app.app_context():
        assert skills.recompute_levels([ana]) == {"levels": 1, "changed": 0, "annotators": 0}
        after = _level(ana, "Text classification")
        assert (after.level, after.confidence) == (64, round(12 / 22, 4))
        assert after.words == "64: 1 gold item on 1 project, 1 right; agreed with consensus on 6 of 9 items"
        assert [c.words for c in after.history] == [before.words]


def test_a_level_stored_without_its_digest_gets_its_evidence_back(app, work):
    """Levels written before the evidence had a digest (or by hand) are rewritten once, unchanged in level."""
    from annotate.models import SkillLevel

    ana, _ben, _project = _ana_at_64(app, work)
    with app.app_context():
        expected = _level(ana, "Text classification")
        with db.transaction() as session:
            level = session.scalar(select(SkillLevel).where(SkillLevel.annotator_id == ana))
            level.evidence, level.evidence_digest = {}, None
        assert skills.recompute_levels([ana]) == {"levels": 1, "changed": 0, "annotators": 0}
        again = _level(ana, "Text classification")
        assert (again.level, again.words, again.evidence) == (expected.level, expected.words, expected.evidence)
