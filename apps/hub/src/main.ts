#!/usr/bin/env node
import { serveUntilSignalled } from './cli/serve';

void serveUntilSignalled();
