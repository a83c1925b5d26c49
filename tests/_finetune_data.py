"""Tiny fine-tuning fixtures, written by the tests in each task's real format, and a tiny twbert export."""

from __future__ import annotations

import json
import random

import torch
from _models import char_tokenizer

from twbert.training.export import export
from twbert.training.model import EncoderConfig, EncoderForMLM

PEOPLE = ["小明", "阿華", "美玲", "志豪", "淑芬", "建國", "雅婷", "家豪"]
PLACES = ["臺北", "高雄", "台中", "花蓮", "台南", "新竹", "基隆", "嘉義"]
FOODS = ["牛肉麵", "滷肉飯", "蚵仔煎", "珍珠奶茶", "臭豆腐", "小籠包"]
# Simplified phrases that s2twp rewrites with another length (内存 -> 記憶體, 博客 -> 部落格).
FILLER = ["他的内存不够，常写博客。", "今天天氣很好。", "大家都很忙。", "下午要開會。"]


def qa_articles(n: int, seed: int = 0) -> dict:
    """SQuAD-style JSON: 'where does X live / what does X like', answers inside longer contexts."""
    rng = random.Random(seed)
    paragraphs = []
    for i in range(n):
        who, where, food = rng.choice(PEOPLE), rng.choice(PLACES), rng.choice(FOODS)
        pre = rng.choice(FILLER)
        context = f"{pre}{who}住在{where}，最喜歡吃{food}。{rng.choice(FILLER)}"
        start_where = context.index(where, len(pre))
        start_food = context.index(food, start_where)
        paragraphs.append({"context": context, "qas": [
            {"id": f"q{i}a", "question": f"{who}住在哪裡？", "answers": [{"text": where, "answer_start": start_where}]},
            {"id": f"q{i}b", "question": f"{who}最喜歡吃什麼？", "answers": [{"text": food, "answer_start": start_food}]},
        ]})
    return {"version": "test", "data": [{"title": "t", "paragraphs": paragraphs}]}


POSITIVE = ["這家店很好吃", "服務很好", "房間乾淨舒服", "非常滿意", "下次還會再來"]
NEGATIVE = ["這家店很難吃", "服務很差", "房間又髒又吵", "非常失望", "再也不會來了"]


def chnsenticorp_tsv(n: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    lines = ["label\ttext_a"]
    for _ in range(n):
        label = rng.randrange(2)
        lines.append(f"{label}\t{rng.choice(POSITIVE if label else NEGATIVE)}，{rng.choice(FILLER)}")
    return "\n".join(lines) + "\n"


def all_text() -> list[str]:
    import opencc

    cc = opencc.OpenCC("s2twp.json")
    base = PEOPLE + PLACES + FOODS + FILLER + POSITIVE + NEGATIVE + ["住在哪裡？最喜歡吃什麼，。"]
    return base + [cc.convert(t) for t in base] + ["0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"]


def tiny_export(root, seed: int = 0):
    """A tiny twbert encoder exported as a Hugging Face ModernBertForMaskedLM directory."""
    tok = char_tokenizer(root / "tokenizer", all_text())
    config = EncoderConfig(vocab_size=64 * -(-len(tok) // 64), hidden_size=32, num_hidden_layers=2,
                           num_attention_heads=2, intermediate_size=48, local_attention=16,
                           max_position_embeddings=512, pad_token_id=0, unk_token_id=1, cls_token_id=2,
                           sep_token_id=3, mask_token_id=4)
    torch.manual_seed(seed)
    return export(EncoderForMLM(config).state_dict(), config, root / "hf", root / "tokenizer")


def write_json(path, obj):
    path.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    return path
