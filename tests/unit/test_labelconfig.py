"""Label configs: what a requester's XML may be, what items and results must
look like against it, and the templates we offer."""

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annotate.labelconfig import (
    KINDS,
    TEMPLATES,
    DataError,
    LabelConfigError,
    ResultError,
    check_data,
    parse_config,
    validate_result,
)

EVERYTHING = """<View>
  <Text name="text" value="$text"/>
  <Choices name="sentiment" toName="text" choice="single">
    <Choice value="Positive" hotkey="1"/>
    <Choice value="Negative" hotkey="2"/>
  </Choices>
  <Choices name="topics" toName="text" choice="multiple">
    <Choice value="Billing"/>
    <Choice value="Shipping"/>
  </Choices>
  <Rating name="stars" toName="text" maxRating="5"/>
  <Number name="score" toName="text" min="0" max="10"/>
  <Labels name="ner" toName="text">
    <Label value="PER"/>
    <Label value="ORG"/>
  </Labels>
  <Relations>
    <Relation value="works_for"/>
  </Relations>
  <Image name="image" value="$image"/>
  <RectangleLabels name="box" toName="image">
    <Label value="Car"/>
    <Label value="Person"/>
  </RectangleLabels>
  <PolygonLabels name="poly" toName="image">
    <Label value="Road"/>
  </PolygonLabels>
</View>"""


@pytest.fixture(scope="module")
def config():
    return parse_config(EVERYTHING)


def region(from_name, to_name, type_, value, id_="r1"):
    return {"id": id_, "from_name": from_name, "to_name": to_name, "type": type_, "value": value}


def choices(*values, name="sentiment"):
    return region(name, "text", "choices", {"choices": list(values)})


def rating(value):
    return region("stars", "text", "rating", {"rating": value})


def number(value):
    return region("score", "text", "number", {"number": value})


def box(**value):
    v = {"x": 10, "y": 10, "width": 20, "height": 20, "rectanglelabels": ["Car"]}
    v.update(value)
    return region("box", "image", "rectanglelabels", v)


def result_error(config, result, where="item 17", **kw) -> ResultError:
    with pytest.raises(ResultError) as info:
        validate_result(config, result, where, **kw)
    return info.value


# --- parsing a config ---------------------------------------------------------


def test_a_config_tells_what_the_data_needs_and_what_the_controls_are(config):
    assert config.xml == EVERYTHING
    assert config.data_keys == ("text", "image")
    assert config.text_keys == ("text",)
    assert config.media_keys == ("image",)
    sentiment = config.control("sentiment")
    assert (sentiment.tag, sentiment.to_name, sentiment.labels, sentiment.choice) == (
        "Choices", ("text",), ("Positive", "Negative"), "single")
    assert config.control("topics").choice == "multiple"
    stars = config.control("stars")
    assert (stars.min, stars.max, stars.result_type) == (1, 5, "rating")
    score = config.control("score")
    assert (score.min, score.max) == (0, 10)
    assert config.control("box").label_key == "rectanglelabels"
    assert config.hotkeys == {"1": ("sentiment", "Positive"), "2": ("sentiment", "Negative")}
    assert [c.name for c in config.controls] == ["sentiment", "topics", "stars", "score", "ner", "box", "poly"]
    assert config.kind == "other"  # several kinds of work at once


def test_parse_config_is_cached_per_xml():
    assert parse_config(EVERYTHING) is parse_config(EVERYTHING)


@pytest.mark.parametrize(
    "xml, kind",
    [
        ('<View><Text name="t" value="$t"/><Choices name="c" toName="t"><Choice value="a"/></Choices></View>',
         "text_classification"),
        ('<View><Text name="t" value="$t"/><Choices name="c" toName="t" choice="multiple"><Choice value="a"/></Choices></View>',
         "multi_label"),
        ('<View><Image name="i" value="$img"/><Choices name="c" toName="i"><Choice value="a"/></Choices></View>',
         "image_classification"),
        ('<View><Text name="t" value="$t"/><Labels name="l" toName="t"><Label value="PER"/></Labels></View>',
         "named_entities"),
        # a per-region text box does not change what the job is
        ('<View><Image name="i" value="$img"/><RectangleLabels name="l" toName="i"><Label value="car"/></RectangleLabels>'
         '<TextArea name="note" toName="i" perRegion="true"/></View>', "bounding_boxes"),
        # <Labels> shared with a bare <Rectangle>: the geometry decides
        ('<View><Image name="i" value="$img"/><Labels name="l" toName="i"><Label value="car"/></Labels>'
         '<Rectangle name="r" toName="i"/></View>', "bounding_boxes"),
        ('<View><Image name="i" value="$img"/><Polygon name="p" toName="i"/></View>', "polygons"),
        ('<View><Text name="t" value="$t"/><Rating name="r" toName="t"/></View>', "rating"),
        ('<View><Audio name="a" value="$audio"/><TextArea name="x" toName="a"/></View>', "transcription"),
        ('<View><Text name="t" value="$t"/><Taxonomy name="x" toName="t"><Choice value="a"/></Taxonomy></View>', "other"),
    ],
)
def test_kind_is_the_coarse_type_of_the_job(xml, kind):
    assert parse_config(xml).kind == kind


def test_an_xml_declaration_and_a_sample_task_comment_are_fine():
    config = parse_config(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<View><!-- {"data": {"t": "hello"}} --><Text name="t" value="$t"/><Rating name="r" toName="t"/></View>'
    )
    assert config.data_keys == ("t",)


def test_markup_that_is_not_well_formed_is_refused_with_line_and_column():
    with pytest.raises(LabelConfigError) as info:
        parse_config('<View>\n  <Text name="text" value="$text">\n</View>')
    assert str(info.value) == (
        "the label config is not well-formed XML at line 3, column 8: "
        "Opening and ending tag mismatch: Text line 2 and View"
    )
    assert info.value.line == 3


@pytest.mark.parametrize("xml", ["", "   \n"])
def test_an_empty_config_is_refused(xml):
    with pytest.raises(LabelConfigError, match="^the label config is empty$"):
        parse_config(xml)


def test_a_doctype_is_refused():
    with pytest.raises(LabelConfigError, match="^the label config may not contain a DOCTYPE$"):
        parse_config('<!DOCTYPE View [<!ENTITY x "$t">]><View><Text name="t" value="&x;"/></View>')


def test_the_root_must_be_a_view():
    with pytest.raises(LabelConfigError) as info:
        parse_config('<Text name="t" value="$t"/>')
    assert str(info.value) == "the label config must start with <View>, not <Text> (line 1)"


def test_an_unknown_tag_is_refused_with_its_name_and_line():
    with pytest.raises(LabelConfigError) as info:
        parse_config('<View>\n  <Text name="t" value="$t"/>\n  <Bogus name="b"/>\n  <Rating name="r" toName="t"/>\n</View>')
    assert str(info.value) == "unknown tag <Bogus> at line 3: it is not a Label Studio tag we support"
    assert (info.value.tag, info.value.line) == ("Bogus", 3)


def test_a_tag_in_the_wrong_case_gets_a_hint():
    with pytest.raises(LabelConfigError) as info:
        parse_config('<View><Text name="t" value="$t"/><choices name="c" toName="t"><Choice value="a"/></choices></View>')
    assert str(info.value) == (
        "unknown tag <choices> at line 1: tag names are case-sensitive, did you mean <Choices>?"
    )


def test_a_to_name_that_names_nothing_is_refused():
    with pytest.raises(LabelConfigError) as info:
        parse_config('<View>\n<Text name="text" value="$text"/>\n'
                     '<Choices name="c" toName="txt"><Choice value="a"/></Choices>\n</View>')
    assert str(info.value) == '<Choices name="c"> at line 3: toName="txt" names nothing; names in the config: c, text'
    assert (info.value.tag, info.value.line) == ("Choices", 3)


def test_a_control_pointing_at_another_control_has_no_object():
    with pytest.raises(LabelConfigError) as info:
        parse_config('<View><Text name="t" value="$t"/><Choices name="c" toName="t"><Choice value="a"/></Choices>'
                     '<Rating name="r" toName="c"/></View>')
    assert str(info.value).startswith(
        '<Rating name="r"> at line 1: toName="c" names <Choices>, not an object tag (Audio, HyperText, Image,'
    )
    assert str(info.value).endswith("so the control has no object")


def test_a_control_without_to_name_is_refused():
    with pytest.raises(LabelConfigError) as info:
        parse_config('<View><Text name="t" value="$t"/><Rating name="r"/></View>')
    assert str(info.value) == '<Rating name="r"> at line 1 has no toName: a control must name the object tag it labels'


def test_duplicate_names_are_refused():
    with pytest.raises(LabelConfigError) as info:
        parse_config('<View>\n<Text name="t" value="$t"/>\n<Text name="t" value="$u"/>\n<Rating name="r" toName="t"/></View>')
    assert str(info.value) == 'duplicate name "t": <Text name="t"> at line 3 and <Text> at line 2'


@pytest.mark.parametrize(
    "xml, message",
    [
        ('<View><Text name="t" value="$t"/></View>',
         "the label config has no control tag (Choices, Labels, RectangleLabels, TextArea...): "
         "annotators would have nothing to do"),
        ('<View><Text name="t" value="$t"/><Choices name="c" toName="t"/></View>',
         '<Choices name="c"> at line 1 has no <Choice>: give it at least one'),
        ('<View><Text name="t"/><Rating name="r" toName="t"/></View>',
         '<Text name="t"> at line 1 has no value: say which data it shows, e.g. value="$text"'),
        ('<View><Text value="$t"/><Rating name="r" toName="t"/></View>', "<Text> at line 1 has no name"),
        ('<View><Text name="t" value="$t"/><Rating name="r" toName="t" maxRating="many"/></View>',
         '<Rating name="r"> at line 1: maxRating="many" is not a number'),
    ],
)
def test_configs_that_cannot_work_are_refused(xml, message):
    with pytest.raises(LabelConfigError) as info:
        parse_config(xml)
    assert str(info.value) == message


def test_what_the_sdk_refuses_is_refused_with_its_reason():
    with pytest.raises(LabelConfigError) as info:
        parse_config('<View><Text name="t" value="$t"/><Choices name="c" toName="t"><Choice/></Choices></View>')
    assert str(info.value) == (
        "Label Studio refuses the config: Validation failed on Choice/0: 'value' is a required property"
    )


# --- data ---------------------------------------------------------------------


def test_data_with_every_variable_passes(config):
    assert check_data(config, {"text": "hi", "image": "/media/a.jpg", "extra": 1}, "line 12") is None


def test_missing_variable_is_named_with_where(config):
    with pytest.raises(DataError) as info:
        check_data(config, {"image": "/media/a.jpg", "body": "hi"}, "line 12")
    assert str(info.value) == (
        'line 12: the data has no "text" (the config\'s $text, shown by <Text name="text">); it has: body, image'
    )
    assert (info.value.key, info.value.where) == ("text", "line 12")


@pytest.mark.parametrize(
    "data, message",
    [
        ({"text": 5, "image": "a.jpg"}, 'line 3: "text" must be text, got the number 5'),
        ({"text": "x", "image": ""}, 'line 3: "image" must be the URL or path of the image, got an empty string'),
        ({"text": "x", "image": None}, 'line 3: the data has no "image"'),
        (["text"], "line 3: the item's data must be an object, got a list"),
    ],
)
def test_data_of_the_wrong_type_is_refused(config, data, message):
    with pytest.raises(DataError) as info:
        check_data(config, data, "line 3")
    assert str(info.value).startswith(message)


# --- results ------------------------------------------------------------------


def test_a_valid_result_passes_and_returns_nothing(config):
    result = [
        choices("Positive"),
        choices("Billing", "Shipping", name="topics"),
        rating(5),
        number(7.5),
        region("ner", "text", "labels", {"start": 0, "end": 3, "text": "Ada", "labels": ["PER"]}, "n1"),
        region("ner", "text", "labels", {"start": 10, "end": 13, "text": "IBM", "labels": ["ORG"]}, "n2"),
        {"from_id": "n1", "to_id": "n2", "type": "relation", "direction": "right", "labels": ["works_for"]},
        box(x=0, y=0, width=100, height=100),
        region("poly", "image", "polygonlabels", {"points": [[0, 0], [50, 0], [50, 100]], "polygonlabels": ["Road"]}),
    ]
    assert validate_result(config, result, "item 1") is None
    assert validate_result(config, [], "item 1") is None


@pytest.mark.parametrize(
    "result, message, field",
    [
        ({"choices": ["Positive"]}, "item 17: the result must be a list of regions, got an object", "result"),
    ],
)
def test_a_result_that_is_not_a_list_is_refused(config, result, message, field):
    err = result_error(config, result)
    assert (str(err), err.field, err.where) == (message, field, "item 17")


def test_a_region_that_is_not_an_object_is_refused(config):
    assert str(result_error(config, [choices("Positive"), "Positive"])) == (
        "item 17, region 1: a region must be an object, got the text 'Positive'"
    )


def test_a_missing_region_field_is_named(config):
    r = choices("Positive")
    del r["to_name"]
    err = result_error(config, [r])
    assert str(err) == "item 17, region 0 (id r1): to_name is missing"
    assert (err.region, err.region_id, err.field) == (0, "r1", "to_name")


def test_unknown_from_name(config):
    err = result_error(config, [region("mood", "text", "choices", {"choices": ["Positive"]})])
    assert str(err) == (
        'item 17, region 0 (id r1): from_name "mood" is not a control of the config '
        "(controls: sentiment, topics, stars, score, ner, box, poly)"
    )
    assert err.field == "from_name"


def test_wrong_to_name(config):
    err = result_error(config, [region("sentiment", "image", "choices", {"choices": ["Positive"]})])
    assert str(err) == 'item 17, region 0 (id r1): to_name "image" is not what control "sentiment" labels (toName: text)'
    assert err.field == "to_name"


def test_wrong_type_for_the_control(config):
    err = result_error(config, [region("sentiment", "text", "labels", {"choices": ["Positive"]})])
    assert str(err) == (
        'item 17, region 0 (id r1): type "labels" is wrong for control "sentiment" (<Choices>): expected "choices"'
    )
    assert err.field == "type"


def test_a_value_that_is_not_an_object(config):
    err = result_error(config, [region("sentiment", "text", "choices", ["Positive"])])
    assert str(err) == "item 17, region 0 (id r1): value must be an object, got a list"


def test_a_label_the_control_does_not_offer(config):
    err = result_error(config, [choices("Angry")])
    assert str(err) == (
        'item 17, region 0 (id r1): value.choices has "Angry", which control "sentiment" does not offer (Positive, Negative)'
    )
    assert err.field == "value.choices"


def test_two_choices_on_a_single_choice_control(config):
    err = result_error(config, [choices("Positive", "Negative")])
    assert str(err) == (
        'item 17, region 0 (id r1): value.choices has 2 values (Positive, Negative) '
        'but control "sentiment" takes one (choice="single")'
    )
    assert err.field == "value.choices"


@pytest.mark.parametrize(
    "value, text",
    [
        (None, "value.choices is missing"),
        ("Positive", "value.choices must be a list of strings, got the text 'Positive'"),
        ([], "value.choices is empty"),
    ],
)
def test_choices_of_the_wrong_shape(config, value, text):
    r = region("sentiment", "text", "choices", {} if value is None else {"choices": value})
    assert str(result_error(config, [r])) == f"item 17, region 0 (id r1): {text}"


# Mostly well-formed regions, so that the one wrong thing in them is what is tested.
_label = st.sampled_from(["Positive", "Negative", "Billing", "Shipping", "x", ""])
_choice_value = st.one_of(
    st.fixed_dictionaries({"choices": st.lists(_label, min_size=1, max_size=2)}),
    st.fixed_dictionaries({"choices": st.lists(_label | st.integers(0, 2) | st.none(), max_size=2)}),
    st.fixed_dictionaries({"choices": st.sampled_from(["Positive", None, 1, {"a": 1}])}),
    st.fixed_dictionaries({"choices": st.just(["Positive"]), "sentiment": st.just({"choices": [1]})}),
    st.fixed_dictionaries({}, optional={"labels": st.just(["Positive"])}),
)
_choice_region = st.fixed_dictionaries(
    {"from_name": st.sampled_from(["sentiment", "topics"]), "to_name": st.sampled_from(["text"] * 5 + ["image"]),
     "type": st.sampled_from(["choices"] * 5 + ["labels"]), "value": _choice_value},
    optional={"id": st.just("r1")},
)


@settings(max_examples=300, deadline=None)
@given(result=st.lists(_choice_region, max_size=2))
def test_our_checks_of_choices_refuse_whatever_the_sdk_refuses(config, result):
    # A result of Choices regions alone is no longer sent to the SDK: ours must be at least as strict.
    sdk_errors = config.interface.validate_prediction({"result": copy.deepcopy(result)}, return_errors=True)
    try:
        validate_result(config, result, "item 1", partial=True)
    except ResultError:
        return
    assert not sdk_errors, sdk_errors


@pytest.mark.parametrize(
    "value, text",
    [
        ("4", "value.rating must be a whole number, got the text '4'"),
        (4.5, "value.rating must be a whole number, got the number 4.5"),
        (True, "value.rating must be a whole number, got a boolean"),
        (9, "value.rating 9 is out of range 1..5"),
        (0, "value.rating 0 is out of range 1..5"),
    ],
)
def test_a_rating_must_be_a_whole_number_in_range(config, value, text):
    err = result_error(config, [rating(value)])
    assert str(err) == f"item 17, region 0 (id r1): {text}"
    assert err.field == "value.rating"


@pytest.mark.parametrize(
    "value, text",
    [
        ("7", "value.number must be a number, got the text '7'"),
        (float("nan"), "value.number must be a number, got the number nan"),
        (11, "value.number 11 is above the maximum 10"),
        (-1, "value.number -1 is below the minimum 0"),
    ],
)
def test_a_number_must_be_a_number_in_range(config, value, text):
    assert str(result_error(config, [number(value)])) == f"item 17, region 0 (id r1): {text}"


@pytest.mark.parametrize(
    "value, field, text",
    [
        ({"x": "10"}, "value.x", "must be a number (percent of the image), got the text '10'"),
        ({"y": None}, "value.y", "is missing"),
        ({"x": -5}, "value.x", "-5 is outside 0..100 (percent of the image)"),
        ({"width": 120}, "value.width", "120 is outside 0..100 (percent of the image)"),
        ({"x": 90, "width": 20}, "value.width", "x + width = 110 reaches past the right edge (100)"),
        ({"y": 50, "height": 60}, "value.height", "y + height = 110 reaches past the bottom edge (100)"),
        ({"rectanglelabels": ["Tree"]}, "value.rectanglelabels",
         'has "Tree", which control "box" does not offer (Car, Person)'),
        ({"rectanglelabels": ["Car", "Person"]}, "value.rectanglelabels",
         'has 2 values (Car, Person) but control "box" takes one (choice="single")'),
    ],
)
def test_rectangle_coordinates_must_be_numbers_within_the_image(config, value, field, text):
    r = box(**value)
    if value.get("y", 0) is None:
        del r["value"]["y"]
    err = result_error(config, [choices("Positive"), r])
    assert str(err) == f"item 17, region 1 (id r1): {field} {text}"
    assert (err.region, err.field) == (1, field)


def test_a_rotated_box_may_reach_past_the_edge(config):
    assert validate_result(config, [box(x=90, width=20, rotation=30)], "item 1") is None


def test_polygon_points_must_be_within_the_image(config):
    r = region("poly", "image", "polygonlabels", {"points": [[0, 0], [50, 0], [50, 101]], "polygonlabels": ["Road"]})
    assert str(result_error(config, [r])) == (
        "item 17, region 0 (id r1): value.points[2] [50, 101] is outside 0..100 (percent of the image)"
    )


def test_what_only_the_sdk_checks_is_reported_with_where_and_region(config):
    # a text span without start/end: our checks pass, the SDK's do not
    r = region("ner", "text", "labels", {"labels": ["PER"]}, "n1")
    err = result_error(config, [r])
    assert str(err).startswith("item 17, region 0 (id n1): Invalid value for control 'ner'.")
    assert (err.region, err.region_id, err.field) == (0, "n1", "value")


def test_a_relation_to_a_missing_region_is_refused(config):
    result = [
        region("ner", "text", "labels", {"start": 0, "end": 3, "labels": ["PER"]}, "n1"),
        {"from_id": "n1", "to_id": "zz", "type": "relation", "direction": "right"},
    ]
    err = result_error(config, result)
    assert str(err) == "item 17, relation 1: 'to_id' 'zz' not found in regions"
    assert (err.region, err.field) == (1, "to_id")


def test_a_required_control_must_be_answered_unless_partial():
    config = parse_config(TEMPLATES["text_classification"].xml)
    err = result_error(config, [])
    assert str(err) == 'item 17: control "label" is required but the result has no region for it'
    # predictions may cover only part of the config
    assert validate_result(config, [], "item 17", partial=True) is None


def test_required_is_not_enforced_on_a_control_shown_only_conditionally():
    config = parse_config(
        '<View><Text name="t" value="$t"/><Choices name="c" toName="t"><Choice value="a"/></Choices>'
        '<View visibleWhen="choice-selected" whenTagName="c" whenChoiceValue="a">'
        '<TextArea name="why" toName="t" required="true"/></View></View>'
    )
    assert validate_result(config, [region("c", "t", "choices", {"choices": ["a"]})], "item 1") is None


def test_labels_shared_with_a_rectangle_make_one_region():
    config = parse_config(
        '<View><Image name="i" value="$img"/><Labels name="l" toName="i"><Label value="car"/></Labels>'
        '<Rectangle name="r" toName="i"/></View>'
    )
    good = region("l", "i", "rectanglelabels", {"x": 1, "y": 1, "width": 5, "height": 5, "rectanglelabels": ["car"]})
    assert validate_result(config, [good], "item 1") is None
    bad = copy.deepcopy(good)
    bad["value"]["x"] = 150
    assert str(result_error(config, [bad])) == (
        "item 17, region 0 (id r1): value.x 150 is outside 0..100 (percent of the image)"
    )


# --- templates ----------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(TEMPLATES))
def test_every_template_parses_and_its_sample_validates(key):
    template = TEMPLATES[key]
    assert template.title
    config = parse_config(template.xml)
    assert config.kind == key
    check_data(config, template.sample_data, "sample")
    assert validate_result(config, template.sample_result, "sample") is None


def test_templates_cover_the_common_kinds():
    assert set(TEMPLATES) == set(KINDS) - {"other"}


def test_a_result_found_valid_is_remembered_and_an_invalid_one_never_is():
    config = parse_config(EVERYTHING.replace("Billing", "Refunds"))  # a config of this test's own
    right = [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["Positive"]}}]
    wrong = copy.deepcopy(right)
    wrong[0]["value"]["choices"] = ["Angry"]
    for _ in range(2):  # asked twice, refused twice, with the same words
        with pytest.raises(ResultError, match="Angry"):
            validate_result(config, wrong, "item 7", partial=True)
    validate_result(config, right, "item 7", partial=True)
    assert len(config._valid_results) == 1
    validate_result(config, copy.deepcopy(right), "item 8", partial=True)  # the same JSON: no new entry
    assert len(config._valid_results) == 1
    with pytest.raises(ResultError, match="Angry"):
        validate_result(config, wrong, "item 9", partial=True)
    # Valid as a prediction (partial) is not valid as an annotation: required controls are checked again.
    required = parse_config(EVERYTHING.replace('<Rating name="stars"', '<Rating required="true" name="stars"'))
    validate_result(required, right, "item 1", partial=True)
    with pytest.raises(ResultError, match="required"):
        validate_result(required, right, "item 1")
