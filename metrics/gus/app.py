"""Gradio Space for the `gus` metric: paste member/null scores, get GUS with its error bars.

evaluate's `launch_gradio_widget` builds its form with `gr.inputs`, which gradio 4+ removed, so
this Space builds the same small form with the current gradio API.
"""

import os
import re

import gradio as gr

import evaluate


HERE = os.path.dirname(os.path.abspath(__file__))
# Load the script next to this file, so the Space (and a local `python app.py`) never needs the Hub.
module = evaluate.load(os.path.join(HERE, "gus.py"))


def _card_body():
    with open(os.path.join(HERE, "README.md"), encoding="utf-8") as f:
        text = f.read()
    return re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.S)


def compute(table):
    """Table with columns predictions (score) and references (1 = poison, 0 = null) -> results."""
    table = table.replace("", float("nan")).dropna()
    return module.compute(
        predictions=[float(x) for x in table["predictions"]],
        references=[int(float(x)) for x in table["references"]],
    )


demo = gr.Interface(
    fn=compute,
    inputs=gr.Dataframe(
        headers=["predictions", "references"],
        datatype=["number", "number"],
        column_count=2,
        row_count=3,
        value=[[2.0, 1], [1.5, 1], [2.5, 1], [0.1, 0], [-0.2, 0], [0.3, 0], [-0.1, 0]],
        label="scores (predictions) and 1 = poison / 0 = null (references)",
    ),
    outputs=gr.JSON(label="gus"),
    title="Metric: gus",
    description=module.info.description,
    article=_card_body(),
)

if __name__ == "__main__":
    demo.launch()
