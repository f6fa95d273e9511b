"""Tables as users have them: which columns are features, how they become numbers, what is refused."""

import numpy as np
import pandas as pd
import pytest

from flowad.core.table_schema import TableSchema, infer_schema


@pytest.fixture
def messy() -> pd.DataFrame:
    """An id, an ISO time stamp, a text category, a boolean, numbers with a gap, and labels."""
    rng = np.random.default_rng(0)
    n = 200
    frame = pd.DataFrame({
        "id": [f"s-{i:04d}" for i in range(n)],
        "timestamp": pd.date_range("2026-01-01", periods=n, freq="min").strftime("%Y-%m-%dT%H:%M:%S"),
        "site": rng.choice(["north", "south", "east"], n, p=[0.6, 0.3, 0.1]),
        "door_open": rng.random(n) < 0.2,
        "temp": rng.normal(20, 2, n),
        "is_anomaly": (rng.random(n) < 0.05).astype(int),
    })
    frame.loc[[3, 7], "temp"] = np.nan
    return frame


def test_identifier_and_time_stamp_columns_are_never_silent_features(messy):
    with pytest.raises(ValueError, match="column 'id' is text with 200 distinct values"):
        infer_schema(messy)
    with pytest.raises(ValueError, match="column 'timestamp' holds dates or times"):
        infer_schema(messy, id_columns="id")
    with pytest.raises(ValueError, match="column 'ts' holds dates"):
        infer_schema(pd.DataFrame({"ts": pd.date_range("2026-01-01", periods=5), "x": range(5)}))


def test_missing_values_are_an_error_naming_the_column_and_rows(messy):
    with pytest.raises(ValueError, match=r"missing values in 2 rows, in column\(s\) 'temp' \(2 rows\).*impute"):
        infer_schema(messy, id_columns="id", drop="timestamp")


def test_roles_features_and_label(messy):
    schema, notes = infer_schema(messy, id_columns=["id"], drop="timestamp", missing="impute")
    assert schema.feature_names == ["site", "door_open", "temp"]
    assert [c.kind for c in schema.features] == ["categorical", "boolean", "numeric"]
    assert schema.label_column == "is_anomaly" and schema.id_columns == ["id"]
    assert any("'is_anomaly' as the label column" in note for note in notes)
    assert schema.encoded_names == ["site", "door_open", "temp", "site__missing", "door_open__missing",
                                    "temp__missing"]


def test_pandas_index_column_is_left_out_with_a_note(tmp_path):
    frame = pd.DataFrame({"a": np.arange(30.0), "b": np.linspace(0, 1, 30)})
    frame.to_csv(tmp_path / "t.csv")  # writes the index as "Unnamed: 0"
    schema, notes = infer_schema(pd.read_csv(tmp_path / "t.csv"))
    assert schema.feature_names == ["a", "b"]
    assert any("Unnamed: 0" in note for note in notes)


def test_label_column_is_never_a_feature_and_ambiguity_is_refused():
    frame = pd.DataFrame({"x": np.arange(10.0), "label": [0, 1] * 5})
    assert infer_schema(frame)[0].feature_names == ["x"]
    assert infer_schema(frame, columns=["x", "label"])[0].feature_names == ["x", "label"]  # chosen explicitly
    with pytest.raises(ValueError, match="several columns look like labels"):
        infer_schema(frame.assign(y=[1, 0] * 5))
    with pytest.raises(ValueError, match="label column 'label' must hold only 0"):
        infer_schema(frame.assign(label=[0, 2] * 5), label_column="label")


def test_categories_are_coded_rarest_first_and_unseen_ones_get_minus_one():
    frame = pd.DataFrame({"site": ["n"] * 5 + ["s"] * 3 + ["e"], "x": np.arange(9.0)})
    schema, _ = infer_schema(frame)
    assert schema.features[0].categories == ("e", "s", "n")
    codes = schema.encode(pd.DataFrame({"x": [1.0, 2.0, 3.0], "site": ["n", "e", "west"]}))[:, 0]
    assert codes.tolist() == [2.0, 0.0, -1.0]


def test_booleans_from_text_and_python_are_zero_one():
    frame = pd.DataFrame({"a": ["true", "False", "TRUE"], "b": [True, False, True], "c": [1.0, 2.0, 3.0]})
    schema, _ = infer_schema(frame)
    assert [c.kind for c in schema.features[:2]] == ["boolean", "boolean"]
    np.testing.assert_array_equal(schema.encode(frame)[:, :2], [[1, 1], [0, 0], [1, 1]])


def test_scoring_selects_columns_by_name_in_any_order(messy):
    schema, _ = infer_schema(messy, id_columns="id", drop="timestamp", missing="impute")
    shuffled = messy[["temp", "is_anomaly", "door_open", "id", "site"]].assign(extra=1.0)
    np.testing.assert_array_equal(schema.encode(shuffled), schema.encode(messy))
    with pytest.raises(ValueError, match="lack the model's feature column.*'door_open'"):
        schema.encode(messy.drop(columns="door_open"))


def test_imputation_fills_with_training_values_and_marks_the_cells(messy):
    schema, _ = infer_schema(messy, id_columns="id", drop="timestamp", missing="impute")
    X = schema.encode(messy)
    temp = messy["temp"].to_numpy()
    assert X[3, 2] == pytest.approx(np.nanmedian(temp)) and X[3, 5] == 1.0
    assert X[0, 5] == 0.0 and X[0, 2] == temp[0]
    assert not np.isnan(X).any()


def test_values_of_the_wrong_type_at_scoring_are_named(messy):
    schema, _ = infer_schema(messy, id_columns="id", drop="timestamp", missing="impute")
    with pytest.raises(ValueError, match="column 'temp' must be numeric.*'warm'"):
        schema.encode(messy.assign(temp=["warm"] + [20.0] * (len(messy) - 1)))


def test_duplicate_and_unknown_column_names_are_refused(messy):
    with pytest.raises(ValueError, match="duplicate column name"):
        infer_schema(pd.DataFrame([[1, 2]], columns=["a", "a"]))
    with pytest.raises(ValueError, match="drop: no column 'nope'"):
        infer_schema(messy, drop="nope")
    with pytest.raises(ValueError, match="both in id_columns and in drop"):
        infer_schema(messy, id_columns="id", drop="id")


def test_schema_survives_json(messy):
    schema, _ = infer_schema(messy, id_columns="id", drop="timestamp", missing="impute")
    again = TableSchema.from_json(schema.to_json())
    assert again == schema
    np.testing.assert_array_equal(again.encode(messy), schema.encode(messy))
