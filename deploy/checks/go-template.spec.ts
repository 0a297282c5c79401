import { describe, expect, it } from 'vitest';
import { ChartRenderer } from './go-template.test-util';

/** The minimal Go-template renderer that deploy/checks uses in place of `helm template`. */

const one = (source: string, values: unknown = {}) =>
  new ChartRenderer({ 't.yaml': source, '_h.tpl': '{{- define "x" -}}x={{ .a }}{{- end -}}' }).render('t.yaml', {
    Values: values,
  });

describe('the minimal template renderer', () => {
  it('trims whitespace on the marked side only, as Go templates do', () => {
    expect(one('a\n  {{- "b" }}\nc')).toBe('ab\nc');
    expect(one('a {{ "b" -}}\n  c')).toBe('a bc');
  });

  it('evaluates if / else if / else, range over maps in key order, with, variables and include', () => {
    expect(one('{{ if .Values.a }}A{{ else if .Values.b }}B{{ else }}C{{ end }}', { b: 1 })).toBe('B');
    expect(one('{{ range $k, $v := .Values }}{{ $k }}={{ $v }};{{ end }}', { b: 2, a: 1 })).toBe('a=1;b=2;');
    expect(one('{{ with .Values.m }}{{ .n }}{{ else }}none{{ end }}', { m: { n: 5 } })).toBe('5');
    expect(one('{{ $v := .Values.a }}{{ $v }}', { a: 'z' })).toBe('z');
    expect(one('{{ include "x" .Values }}', { a: 7 })).toBe('x=7');
    expect(one('{{ .Values.a | default "d" | quote }}', { a: '' })).toBe('"d"');
    expect(one('k:{{ toYaml .Values | nindent 2 }}', { a: [1, 2] })).toBe('k:\n  a:\n    - 1\n    - 2');
  });

  it('compares numbers with gt, ge, lt and le (int first, as charts do with YAML numbers)', () => {
    expect(one('{{ gt (int .Values.n) 1 }} {{ ge 1 1 }} {{ lt 1 2 }} {{ le 3 2 }}', { n: 2.0 })).toBe(
      'true true true false',
    );
    expect(one('{{ if gt (int .Values.n) 1 }}many{{ else }}one{{ end }}', { n: 1 })).toBe('one');
    // Go refuses to order a string against a number; so does the renderer.
    expect(() => one('{{ gt .Values.n 1 }}', { n: '2' })).toThrow('gt compares numbers, got string and number');
  });

  it('counts with len, checks membership with has and hasKey', () => {
    expect(one('{{ len .Values.l }} {{ len .Values.m }} {{ len "abc" }}', { l: [1, 2], m: { a: 1 } })).toBe('2 1 3');
    expect(one('{{ has .Values.t (list "s3" "filesystem") }}', { t: 's3' })).toBe('true');
    expect(one('{{ hasKey .Values "k" }}', { k: '' })).toBe('true');
  });

  it('indexes maps and lists, and tests prefixes', () => {
    expect(one('{{ index .Values.m "A-B" }}|{{ index .Values.m "none" }}', { m: { 'A-B': 'x' } })).toBe('x|');
    expect(one('{{ index .Values.l 1 }}', { l: ['a', 'b'] })).toBe('b');
    expect(() => one('{{ index .Values.l 2 }}', { l: ['a', 'b'] })).toThrow('index 2 out of range');
    expect(one('{{ hasPrefix "/data/" .Values.f }} {{ hasPrefix "/data/" "/etc/x" }}', { f: '/data/a.csv' })).toBe(
      'true false',
    );
  });

  it('stops the rendering on fail with its message, as Helm does', () => {
    const source = '{{ if gt (int .Values.n) 1 }}{{ fail (printf "n is %d, at most 1" .Values.n) }}{{ end }}ok';
    expect(one(source, { n: 1 })).toBe('ok');
    expect(() => one(source, { n: 3 })).toThrow('n is 3, at most 1');
  });

  it('fails on what it does not support rather than rendering something plausible', () => {
    expect(() => one('{{ .Values.a | semverCompare ">1" }}')).toThrow('unsupported function semverCompare');
    expect(() => one('{{ required "need a" .Values.a }}')).toThrow('need a');
    expect(() => one('{{ if .Values.a }}x')).toThrow('if without end');
  });
});
