#!/usr/bin/env node
import '../dist/ts/cli/main.js';
