#!/usr/bin/env node
import { serveUntilSignalled } from './serve';

void serveUntilSignalled();
