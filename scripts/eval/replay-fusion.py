#!/usr/bin/env python3
"""Replays Footnote's fusion over the retriever lists of `footnote eval --dump-lists FILE`.

Trying a fusion setting with `footnote eval --reuse` takes a minute per run on SciFact; over the
dumped lists it takes seconds, so many settings can be compared. The fusion here is the one in
src/retrieval/fusion.rs (min-max linear or reciprocal rank, per chunk and per document), and the
metrics those of src/eval/metrics.rs, so with the settings the dump was made with it prints the
eval's own figures; the test `eval_dumps_lists_that_replay_to_the_same_figures` holds it to that.

    footnote eval DIR --split train --reuse --dump-lists lists.jsonl
    scripts/eval/replay-fusion.py lists.jsonl --document-weight 0.5 --bm25-weight 0.55 --vector-weight 0.45

Python 3 only, no packages. The settings default to Footnote's shipped retrieval defaults.
"""
import argparse
import json
import math
import sys


def normalise(items):
    """Min-max to 0..1 (every score 1 when they are all equal), as `fusion::normalise`."""
    if not items:
        return []
    top = max(s for _, s in items)
    low = min(s for _, s in items)
    span = top - low
    return [(k, (s - low) / span if span > 1.1920929e-07 else 1.0) for k, s in items]


def fuse_lists(bm25, vector, args):
    out = {}
    for items, weight in ((bm25, args.bm25_weight), (vector, args.vector_weight)):
        if args.fusion == "rrf":
            for rank, (key, _) in enumerate(items):
                out[key] = out.get(key, 0.0) + weight / (args.rrf_k + rank + 1.0)
        else:
            for key, score in normalise(items):
                out[key] = out.get(key, 0.0) + weight * score
    return out


def by_document(items, document, evidence):
    """A list folded per document: its best chunk over the list's floor, plus `evidence` times
    the rest, best first, as `fusion::by_document`."""
    if not items:
        return []
    floor = min(s for _, s in items)
    best, order = {}, []
    for chunk, score in items:
        doc = document[chunk]
        if doc in best:
            best[doc][1] += score - floor
        else:
            best[doc] = [score - floor, 0.0]
            order.append(doc)
    folded = [(d, best[d][0] + evidence * best[d][1]) for d in order]
    folded.sort(key=lambda x: -x[1])
    return folded


def rank_documents(bm25, vector, document, args):
    """Documents by their best chunk's fused score; ties by document id, highest first."""
    chunks = fuse_lists(bm25, vector, args)
    weight = min(max(args.document_weight, 0.0), 1.0)
    docs = {}
    if weight > 0.0:
        docs = fuse_lists(by_document(bm25, document, args.document_evidence),
                          by_document(vector, document, args.document_evidence), args)
    score = {}
    for chunk, s in chunks.items():
        doc = document[chunk]
        s = (1.0 - weight) * s + weight * docs.get(doc, 0.0)
        score[doc] = max(score.get(doc, -math.inf), s)
    return sorted(score, key=lambda d: (-score[d], _descending(d)))


def _descending(doc):
    return [-b for b in doc.encode()] + [1]


def metrics(ranking, judged):
    relevant = {d: g for d, g in judged.items() if g > 0}
    if not relevant:
        return None
    dcg = sum(relevant.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranking[:10]))
    ideal = sorted(relevant.values(), reverse=True)[:10]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    recall = sum(1 for d in ranking[:100] if d in relevant) / len(relevant)
    return dcg / idcg, recall


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dump", help="the file written by footnote eval --dump-lists")
    p.add_argument("--fusion", choices=["linear", "rrf"], default="linear")
    p.add_argument("--bm25-weight", type=float, default=0.6)
    p.add_argument("--vector-weight", type=float, default=0.4)
    p.add_argument("--rrf-k", type=float, default=10.0)
    p.add_argument("--document-weight", type=float, default=0.9)
    p.add_argument("--document-evidence", type=float, default=0.0)
    p.add_argument("--top-k", type=int, default=None, help="cut each list to its first N hits")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args()

    sums = {m: [0.0, 0.0, 0] for m in ("bm25", "vector", "hybrid")}
    with open(args.dump, encoding="utf-8") as f:
        for line in f:
            q = json.loads(line)
            document = {}
            lists = {}
            for name in ("bm25", "vector"):
                hits = q[name][: args.top_k] if args.top_k else q[name]
                for doc, chunk, _ in hits:
                    document[chunk] = doc
                lists[name] = [(chunk, score) for _, chunk, score in hits]
            for mode, (b, v) in {"bm25": (lists["bm25"], []), "vector": ([], lists["vector"]),
                                 "hybrid": (lists["bm25"], lists["vector"])}.items():
                m = metrics(rank_documents(b, v, document, args), q["judged"])
                if m is not None:
                    sums[mode][0] += m[0]
                    sums[mode][1] += m[1]
                    sums[mode][2] += 1
    figures = {m: {"ndcg_at_10": s[0] / s[2], "recall_at_100": s[1] / s[2], "queries": s[2]}
               for m, s in sums.items() if s[2]}
    if args.json:
        json.dump(figures, sys.stdout)
        print()
    else:
        print("| mode   | nDCG@10 | Recall@100 |")
        print("|--------|--------:|-----------:|")
        for mode, f in figures.items():
            print(f"| {mode:<6} | {f['ndcg_at_10']:7.4f} | {f['recall_at_100']:10.4f} |")


if __name__ == "__main__":
    main()
