#!/bin/sh
echo "sample engine: LOG_LEVEL=${LOG_LEVEL:-info}"
