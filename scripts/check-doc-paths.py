#!/usr/bin/env python3
"""Every path a document names in backquotes exists in the repository.

Usage: python3 scripts/check-doc-paths.py ARCHITECTURE.md docs/wire.md
"""
import re,sys,os,subprocess
os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
tracked=set(subprocess.run(['git','ls-files'],capture_output=True,text=True).stdout.split())
dirs=set()
for t in tracked:
    parts=t.split('/')
    for i in range(1,len(parts)): dirs.add('/'.join(parts[:i]))
bad=0
for doc in sys.argv[1:]:
    text=open(doc).read()
    for tok in re.findall(r'`([^`\s]+)`',text):
        cand=tok.rstrip(':,.').split('#')[0]
        if '/' not in cand and not re.search(r'\.(md|rs|toml|sh|conf|yaml|json)$',cand): continue
        if any(c in cand for c in '<>*{}$…"') or cand.startswith(('mpc.','$','http','_INBOX','/')): continue
        # Not repository paths: Go packages, GitHub names, user files, byte notation, generated dirs.
        if cand in {'encoding/json','fystack/mpcium','config.yaml','peers.json','0x02/0x03','ready/','./.tools'}: continue
        opts=[cand, 'crates/'+cand, 'crates/mpcium-node/src/'+cand, 'crates/mpcium-node/'+cand]
        if any(o.rstrip('/') in tracked or o.rstrip('/') in dirs for o in opts): continue
        # A module path (`service/intake`) or a file named from its crate (`ecdsa/abort.rs`).
        if any(t.endswith('/'+cand) or t.endswith('/'+cand+'.rs') for t in tracked): continue
        print(f'{doc}: `{tok}` not found'); bad+=1
sys.exit(1 if bad else 0)
