"""The patient page's charts in a real browser: glucose in g/L and in mg/dL on charts of their
own, each with its own alert lines named in French, the SpO2 floor drawn in a step that does
not watch it, and an abnormal reading said in words (tooltip) as well as in colour."""

from __future__ import annotations

from typing import Any

from coordination.models import CarePathway
from tests.browser.conftest import PASSWORD, SCREENSHOTS, axe_violations, log_in, screenshot
from tests.web.test_measurement_pages import ingest, nurse_of, pathway_in


def nurse_page(pathway: CarePathway, browser: Any, live_url: str) -> Any:
    nurse = nurse_of(pathway).user
    nurse.set_password(PASSWORD)
    nurse.save(update_fields=["password"])
    page = log_in(browser, live_url, nurse.username)
    page.goto(f"{live_url}/patients/{pathway.patient_id}/")
    page.wait_for_selector("figure.chart .uplot")
    return page


def legend(page: Any, code: str, unit: str) -> list[str]:
    figure = page.locator(f'figure.chart[data-code="{code}"][data-unit="{unit}"]')
    return [text.strip() for text in figure.locator(".u-legend .u-series").all_inner_texts()]


def test_glucose_units_have_charts_of_their_own_and_the_tip_says_the_low_reading_is_abnormal(
    live_url: str, browser: Any
):
    pathway = pathway_in("t2d-follow-up", "follow_up")
    ingest(
        pathway,
        ("41653-7", "1.10", "g/L", 50),
        ("41653-7", "0.98", "g/L", 26),
        ("41653-7", "112", "mg/dL", 20),
        ("41653-7", "0.62", "g/L", 3),
    )

    page = nurse_page(pathway, browser, live_url)
    grams = page.locator('figure.chart[data-code="41653-7"][data-unit="g/L"]')
    over = grams.locator(".u-over")
    box = over.bounding_box()
    over.hover(position={"x": box["width"] / 2, "y": 10})
    over.hover(position={"x": box["width"] - 1, "y": box["height"] / 2})
    grams.locator(".chart-tip").wait_for(state="visible")
    tip = grams.locator(".chart-tip").inner_text()
    grams.screenshot(path=SCREENSHOTS / "glucose-tooltip.png")
    screenshot(page, "patient-glucose-charts")
    page.locator("#obs-title").locator("..").screenshot(path=SCREENSHOTS / "glucose-charts.png")

    assert page.locator("figure.chart .uplot").count() == 2
    grams_legend, milligrams_legend = (
        legend(page, "41653-7", "g/L"),
        legend(page, "41653-7", "mg/dL"),
    )
    assert grams_legend[:2] == ["Glycémie capillaire (g/L)", "⚠ Valeur anormale"]
    assert [x.rsplit(" : ", 1)[1] for x in grams_legend[2:]] == ["0,7 g/L", "0,54 g/L"]
    assert [x.rsplit(" : ", 1)[1] for x in milligrams_legend[1:]] == ["70 mg/dL", "54 mg/dL"]
    assert not any("Time" in x or "--" in x for x in grams_legend + milligrams_legend)
    assert tip.endswith("0,62 g/L ⚠ Valeur anormale")


def test_the_spo2_chart_draws_the_90_floor_in_a_step_that_does_not_watch_it(
    live_url: str, browser: Any
):
    pathway = pathway_in("hf-telemonitoring", "hospitalisation")
    ingest(pathway, ("59408-5", "95", "%", 30), ("59408-5", "86", "%", 2))

    page = nurse_page(pathway, browser, live_url)
    screenshot(page, "patient-spo2-chart")
    page.locator("#obs-title").locator("..").screenshot(path=SCREENSHOTS / "spo2-chart.png")

    labels = legend(page, "59408-5", "%")
    assert labels[:2] == ["SpO2 (%)", "⚠ Valeur anormale"]
    assert [x.rsplit(" : ", 1)[1] for x in labels[2:]] == ["90 %"]
    assert page.csp_violations == []
    assert axe_violations(page) == []


def test_a_new_reading_reaches_the_open_patient_page_table_and_chart_without_a_reload(
    live_url: str, browser: Any
):
    pathway = pathway_in("hf-telemonitoring", "monitoring")
    ingest(pathway, ("59408-5", "96", "%", 30), ("59408-5", "95", "%", 6))
    page = nurse_page(pathway, browser, live_url)
    page.wait_for_selector('#live-status[data-state="connected"]', timeout=10_000)
    page.evaluate("window.loadedOnce = true")
    figure = 'figure.chart[data-code="59408-5"][data-unit="%"]'
    assert "84" not in page.inner_text(f"{figure} table.measurements")

    ingest(pathway, ("59408-5", "84", "%", 0))

    page.wait_for_function(
        "s => (document.querySelector(s) || {}).textContent.includes('84')",
        arg=f"{figure} table.measurements",
        timeout=5_000,
    )
    page.wait_for_function(  # drawn again from the new data: three points, one chart
        "s => JSON.parse(document.getElementById('chart-data').textContent)"
        ".some(c => c.code === '59408-5' && c.y.length === 3)"
        " && document.querySelectorAll(s + ' .uplot').length === 1",
        arg=figure,
        timeout=5_000,
    )
    assert page.evaluate("window.loadedOnce") is True  # updated in place, not reloaded
    assert "⚠" in page.inner_text(f"{figure} table.measurements")
    assert page.csp_violations == []
