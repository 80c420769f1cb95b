import yaml, json, subprocess, sys, os, tempfile
path = sys.argv[1]
data = yaml.safe_load(open(path))
world = data.get('world', 'fake')
outdir = tempfile.mkdtemp()
files = []
for i, case in enumerate(data['cases']):
    rgd = {'apiVersion': 'kro.run/v1alpha1', 'kind': 'ResourceGraphDefinition',
           'metadata': {'name': case.get('rgd_name', 'test')}, 'spec': case['spec']}
    f = os.path.join(outdir, f'{i:03d}.yaml')
    yaml.safe_dump(rgd, open(f, 'w'))
    files.append(f)
w = case_world = data.get('world', 'fake')
if w == 'fake':
    args = ['/tmp/oracle/kro-check', '/tmp/kapi-empty', os.path.dirname(os.path.abspath(path)) + '/worldcrds'  # a folder holding a copy of world.yaml]
else:
    args = ['/tmp/oracle/kro-check', '/tmp/kapi', '-']
env = dict(os.environ)
if data.get('gates'): env['KRO_FEATURE_GATES'] = ','.join(g + '=true' for g in data['gates'])
out = subprocess.run(args + files, capture_output=True, text=True, env=env)
results = {}
for line in out.stdout.splitlines():
    d = json.loads(line)
    results[int(os.path.basename(d['file'])[:3])] = d
if out.stderr: print(out.stderr[-2000:])
ok = bad = 0
for i, case in enumerate(data['cases']):
    r = results.get(i, {})
    err = r.get('error') or r.get('decode')
    if 'reject' in case:
        good = err is not None and case['reject'] in err
    else:
        good = err is None and r.get('ok')
        if good and 'order' in case:
            good = r['order'] == case['order']
    if good: ok += 1
    else:
        bad += 1
        print('MISMATCH', case['name'], '|', 'want', case.get('reject', 'accept'), '| got', err if err else r.get('order'))
    if len(sys.argv) > 2:
        print(case['name'], '=>', err or 'OK')
print(ok, 'match,', bad, 'mismatch')
