"""Gradio Space for the `tpr_at_fpr` metric: paste member/null scores, get TPR at fixed FPRs.

evaluate's `launch_gradio_widget` builds its form with `gr.inputs`, which gradio 4+ removed, so
this Space builds the same small form with the current gradio API.
"""

import os
import re

import gradio as gr

import evaluate


HERE = os.path.dirname(os.path.abspath(__file__))
# Load the script next to this file, so the Space (and a local `python app.py`) never needs the Hub.
module = evaluate.load(os.path.join(HERE, "tpr_at_fpr.py"))


def _card_body():
    with open(os.path.join(HERE, "README.md"), encoding="utf-8") as f:
        text = f.read()
    return re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.S)


def compute(table, fpr):
    """Table with columns predictions (score) and references (1 = member, 0 = null), FPRs as text."""
    table = table.replace("", float("nan")).dropna()
    rates = [float(a) for a in re.split(r"[,\s]+", fpr.strip()) if a]
    return module.compute(
        predictions=[float(x) for x in table["predictions"]],
        references=[int(float(x)) for x in table["references"]],
        fpr=rates or None,
    )


demo = gr.Interface(
    fn=compute,
    inputs=[
        gr.Dataframe(
            headers=["predictions", "references"],
            datatype=["number", "number"],
            column_count=2,
            row_count=3,
            value=[[0.9, 1], [0.8, 1], [0.7, 0], [0.6, 1], [0.5, 0], [0.4, 1], [0.3, 0], [0.2, 0]],
            label="scores (predictions) and 1 = member / 0 = null (references)",
        ),
        gr.Textbox(value="0.25, 0.5", label="fpr (comma-separated; empty = 0.01, 0.001)"),
    ],
    outputs=gr.JSON(label="tpr_at_fpr"),
    title="Metric: tpr_at_fpr",
    description=module.info.description,
    article=_card_body(),
)

if __name__ == "__main__":
    demo.launch()
