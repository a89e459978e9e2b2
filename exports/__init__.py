"""Dataset formats and payroll files, written as streams.

Pure code: no ORM, no Flask. The services hand these writers plain values
(Label Studio task dicts, consensus rows, payroll rows) one at a time, and
each writer writes as it goes, so no export holds a whole project in memory.

- `formats`: the catalogue of export formats and which of them a label
  config can be exported to (with the reason when it cannot).
- `labelstudio`: Label Studio JSON, JSON-min, CSV and TSV.
- `converted`: COCO, YOLO and Pascal VOC, written item by item with
  label-studio-sdk's converter's arithmetic, and CoNLL 2003 through its
  `Converter`; stored media go into the archive.
- `consensus`: our consensus file, as JSONL and CSV.
- `media`: which stored media file a data value names, if any (safely).
- `pseudonyms`: per-export pseudonyms for annotator ids.
- `payroll`: payroll rows, CSV and JSON, in integer minor units.
- `money`: minor units as exact decimal text.
"""
