"""SVG charts: valid XML, accessible, one bar or point per value, escaped labels."""
from xml.etree import ElementTree

from evaluation.charts import bar_chart, line_chart

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg):
    root = ElementTree.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    return root


def test_bar_chart_grouped_bars_escaped_labels():
    series = {
        "Base": {"Fiscalité": 0.8, "Social <R&D>": 0.5},
        "Affiné": {"Fiscalité": 0.9, "Social <R&D>": 0.6, "Budget": 0.7},
    }
    svg = bar_chart(series, "MRR@10 par domaine & version")
    assert "<R&D>" not in svg and "&lt;R&amp;D&gt;" in svg
    root = parse(svg)
    assert root.get("aria-label") == "MRR@10 par domaine & version"
    assert root.find(f"{SVG}title").text == "MRR@10 par domaine & version"
    bars = [rect for rect in root.iter(f"{SVG}rect") if rect.get("class") == "bar"]
    assert len(bars) == 5  # Base has no Budget bar
    titles = [bar.find(f"{SVG}title").text for bar in bars]
    assert "Affiné, Budget : 70,0 %" in titles
    texts = {text.text for text in root.iter(f"{SVG}text")}
    assert {"Fiscalité", "Social <R&D>", "Budget", "Base", "Affiné"} <= texts
    # Higher value, taller bar.
    heights = {title: float(bar.get("height")) for title, bar in zip(titles, bars)}
    assert heights["Affiné, Fiscalité : 90,0 %"] > heights["Base, Fiscalité : 80,0 %"]


def test_line_chart_points_per_series_and_plain_numbers():
    points = [
        ("v1", {"Def-only": 0.61, "Concept": 0.9}),
        ("v2 <champion>", {"Def-only": 0.65}),
        ("v3", {"Def-only": 0.7, "Concept": 0.93}),
    ]
    root = parse(line_chart(points, "Historique des champions"))
    circles = [c for c in root.iter(f"{SVG}circle") if c.get("class") == "point"]
    assert len(circles) == 5
    lines = [p for p in root.iter(f"{SVG}polyline") if p.get("class") == "line"]
    assert [len(line.get("points").split()) for line in lines] == [3, 2]
    assert "v2 <champion>" in {text.text for text in root.iter(f"{SVG}text")}

    counts = parse(line_chart([("a", {"requêtes": 120.0}), ("b", {"requêtes": 780.0})], "Taille"))
    assert "requêtes, b : 780" in [c.find(f"{SVG}title").text for c in counts.iter(f"{SVG}circle")]


def test_empty_charts_are_still_valid():
    parse(bar_chart({}, "Vide"))
    parse(line_chart([], "Vide"))


def test_long_category_labels_are_shortened_with_the_full_label_as_tooltip():
    from xml.etree import ElementTree

    from evaluation.charts import bar_chart

    long_names = {f"non_llm_context_precision_with_reference_{i}": 0.5 for i in range(6)}
    root = ElementTree.fromstring(bar_chart({"v1": long_names}, "RAGAS"))
    ns = "{http://www.w3.org/2000/svg}"
    labels = [text for text in root.iter(f"{ns}text") if text.text and "…" in text.text]
    assert len(labels) == 6
    assert {label.find(f"{ns}title").text for label in labels} == set(long_names)
    # Shortened labels that would read the same keep their distinguishing end instead.
    assert len({label.text for label in labels}) == 6
