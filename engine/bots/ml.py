"""An ML bot: a scikit-learn classifier of the next bar's direction, trained walk-forward."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from loguru import logger
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from engine.bots.api import Bot, BotParams
from engine.core.models import Bar


@dataclass(slots=True, frozen=True)
class MLParams(BotParams):
    lags: int = 5
    train_bars: int = 200
    min_train: int = 50
    retrain_every: int = 20
    threshold: float = 0.6
    allow_short: bool = False

    def check(self) -> None:
        if self.lags < 1:
            raise ValueError(f"lags must be 1 or more, not {self.lags}")
        if not 10 <= self.min_train <= self.train_bars:
            raise ValueError(
                f"min_train ({self.min_train}) must be from 10 to train_bars ({self.train_bars})"
            )
        if self.retrain_every < 1:
            raise ValueError(f"retrain_every must be 1 or more, not {self.retrain_every}")
        if not 0.5 < self.threshold < 1.0:
            raise ValueError(f"threshold must be above 0.5 and below 1, not {self.threshold}")


def features(bars: list[Bar], lags: int) -> np.ndarray:
    """One row per bar from index ``lags`` on: its last ``lags`` log returns and its range.

    Row ``i`` (for bar ``lags + i``) reads only that bar and the ones before it.
    """
    closes = np.array([float(b.close) for b in bars])
    returns = np.diff(np.log(closes))
    ranges = np.array([float((b.high - b.low) / b.close) for b in bars])
    rows = [np.append(returns[i - lags : i][::-1], ranges[i]) for i in range(lags, len(bars))]
    return np.array(rows).reshape(-1, lags + 1)


class MLBot(Bot):
    """Logistic regression on standardized recent returns predicts whether the next close is up.

    Rule: features of a bar are its last ``lags`` log returns and its high-low range
    over the close. The label of a bar is 1 when the next bar closes higher. Walk
    forward, without look-ahead: at each bar the model is (re)trained every
    ``retrain_every`` bars on the last ``train_bars`` bars whose next close is
    already known (so never on the bar just closed), once there are ``min_train``
    of them. With P(up) from ``predict_proba`` for the bar just closed, P(up) >=
    ``threshold`` goes long ``qty``; P(up) <= 1 - ``threshold`` goes flat (short
    with ``allow_short``); anything between changes nothing. Confidence is the
    predicted class's probability. Each symbol's model is saved with joblib in the
    bot's storage folder after every fit and loaded back on restart.

    Parameters: ``symbols``, ``qty`` (100), ``lags`` (5), ``train_bars`` (200),
    ``min_train`` (50), ``retrain_every`` (20), ``threshold`` (0.6), ``allow_short``
    (false), ``ttl_s`` (60).
    """

    kind = "ml"
    Params = MLParams
    params: MLParams

    def __init__(self, params: BotParams, ctx: Any) -> None:
        super().__init__(params, ctx)
        self._models: dict[str, Pipeline] = {}
        self._since_fit: dict[str, int] = {}

    def history_size(self) -> int:
        return self.params.train_bars + self.params.lags + 1

    def model_path(self, symbol: str) -> Path | None:
        folder = self.ctx.storage_dir
        return None if folder is None else folder / f"ml-{symbol}.joblib"

    def on_start(self) -> None:
        for symbol in self.symbols:
            path = self.model_path(symbol)
            if path is not None and path.is_file():
                self._models[symbol] = joblib.load(path)
                logger.info("bot {}: loaded the {} model from {}", self.ctx.name, symbol, path)

    def on_bar(self, bar: Bar) -> None:
        bars = self.remember(bar)
        p = self.params
        symbol = bar.symbol
        if len(bars) <= p.lags + 1:
            return
        rows = features(bars, p.lags)
        closes = np.array([float(b.close) for b in bars[p.lags :]])
        # Row j's label is the move from its bar to the next: known for every row but the last.
        labels = (np.diff(closes) > 0).astype(int)
        known = rows[:-1][-p.train_bars :]
        known_labels = labels[-p.train_bars :]
        due = self._since_fit.get(symbol, p.retrain_every) + 1
        self._since_fit[symbol] = due
        if len(known) >= p.min_train and due >= p.retrain_every and len(set(known_labels)) == 2:
            self._fit(symbol, known, known_labels)
        model = self._models.get(symbol)
        if model is None:
            return
        p_up = float(model.predict_proba(rows[-1:])[0][list(model.classes_).index(1)])
        if p_up >= p.threshold:
            target, confidence = p.qty, p_up
        elif p_up <= 1 - p.threshold:
            target, confidence = (-p.qty if p.allow_short else Decimal(0)), 1 - p_up
        else:
            return
        self.toward(symbol, target, bar.close, confidence, f"model gives P(up) {p_up:.0%}")

    def _fit(self, symbol: str, rows: np.ndarray, labels: np.ndarray) -> None:
        # Returns are ~1e-3: standardized, the regularization does not flatten them to nothing.
        model = make_pipeline(StandardScaler(), LogisticRegression())
        model.fit(rows, labels)
        self._models[symbol] = model
        self._since_fit[symbol] = 0
        path = self.model_path(symbol)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            joblib.dump(model, path)

    def state(self) -> dict[str, Any]:
        return {**super().state(), "since_fit": dict(self._since_fit)}

    def restore(self, state: dict[str, Any]) -> None:
        super().restore(state)
        self._since_fit = {s: int(n) for s, n in state.get("since_fit", {}).items()}
