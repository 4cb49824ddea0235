/* Herald widget; source: widget/widget.js */
((w,d)=>{'use strict';if(w.Herald&&w.Herald.v)return;var N=d.currentScript||d.querySelector('script[data-site][src*="widget.js"]');if(!N)return;var Ba=N.getAttribute('data-site'),base=new URL(N.src,location.href).origin+'/widget/v1/'+Ba;var o=ma(w.localStorage),ss=ma(w.sessionStorage);var J=o.get('hv');var Ca=!!J&&!ss.get('hs');if(!J){J=ha();o.set('hv',J);}
ss.set('hs','1');var ja=ss.get('hi')||ha();ss.set('hi',ja);var utm={},qs=new URLSearchParams(location.search);['source','medium','campaign'].forEach(k=>{var x=qs.get('utm_'+k);if(x)utm[k]=x;});var g={on:false,feed:null,country:null,queue:[],shown:{},timer:0,es:null,poll:0,fails:0,beacons:[],current:null,hb:0};var F,root,box;function ma(s){return{get:k=>{try{return s.getItem(k);}catch(e){return null;}},set:(k,v)=>{try{s.setItem(k,v);}catch(e){}}};}
function ha(){var a=crypto.getRandomValues(new Uint8Array(16));return Array.from(a,b=>('0'+b.toString(16)).slice(-2)).join('');}
function now(){return Date.now();}
var Ia=['sun','mon','tue','wed','thu','fri','sat'];function L(z,j){if(!z)return true;if(z.all)return z.all.every(n=>L(n,j));if(z.any)return z.any.some(n=>L(n,j));if(z.not)return!L(z.not,j);return ra(z,j);}
function text(field,j){var u;try{u=new URL(j.url);}catch(e){u=null;}
if(field==='url')return j.url;if(field==='referrer')return j.referrer||null;if(field==='path')return u?u.pathname:'/';return u?u.searchParams.get(field):null;}
function xa(s,p){var O=0,pi=0,star=-1,C=0;s=Array.from(s);p=Array.from(p);while(O<s.length){if(pi<p.length&&(p[pi]==='?'||p[pi]===s[O])){O++;pi++;}
else if(pi<p.length&&p[pi]==='*'){star=pi++;C=O;}
else if(star>=0){pi=star+1;O=++C;}
else return false;}
while(pi<p.length&&p[pi]==='*')pi++;return pi===p.length;}
function ra(c,j){var f=c.field,op=c.op,v=c.value;if(f==='device'||f==='country'||f==='visitor'){var na=f==='device'?j.device:f==='visitor'?j.visitor:(j.country||'').toUpperCase();if(!na)return false;var Q=op==='is'?[v]:(v||[]);return Q.some(x=>typeof x==='string'&&x.toLowerCase()===na.toLowerCase());}
if(f==='schedule')return Da(v||{},j);var s=text(f,j);if(op==='exists')return(!!s)===(v===undefined||v===null?true:v);if(s==null||typeof v!=='string')return false;var U=c.caseSensitive===true,a=U?s:s.toLowerCase(),b=U?v:v.toLowerCase();if(op==='equals')return a===b;if(op==='contains')return a.indexOf(b)>=0;if(op==='startsWith')return a.indexOf(b)===0;if(op==='glob')return xa(a,b);if(op==='regex'){try{return new RegExp(v,U?'':'i').test(s.slice(0,2048));}catch(e){return false;}}
return false;}
function Da(B,j){var H={};try{new Intl.DateTimeFormat('en-US',{timeZone:j.timezone||'UTC',year:'numeric',month:'2-digit',day:'2-digit',weekday:'short',hour:'2-digit',minute:'2-digit',hourCycle:'h23'}).formatToParts(new Date(j.now)).forEach(p=>{H[p.type]=p.value;});}catch(e){return false;}
var day=+(H.year+H.month+H.day);if(B.from&&day<+B.from.replace(/-/g,''))return false;if(B.to&&day>+B.to.replace(/-/g,''))return false;if(B.weekdays&&B.weekdays.indexOf(H.weekday.toLowerCase().slice(0,3))<0)return false;if(B.hours){var m=(+H.hour%24)*60+ +H.minute,f=ga(B.hours.from),t=ga(B.hours.to);if(f==null||t==null)return false;if(f<t?!(m>=f&&m<t):!(m>=f||m<t))return false;}
return true;}
function ga(s){var p=/^(\d\d):(\d\d)$/.exec(s||'');return p?+p[1]*60+ +p[2]:null;}
function wa(s){var h=0x811c9dc5;for(var i=0;i<s.length;i++){h^=s.charCodeAt(i);h=Math.imul(h,0x01000193)>>>0;}
return h>>>0;}
function Z(variants,X,visitor){if(!variants||!variants.length)return null;var Ga=variants.reduce((t,x)=>t+x.weight,0),r=wa(visitor+':'+X)%Ga;for(var i=0;i<variants.length;i++){if(r<variants[i].weight)return variants[i].id;r-=variants[i].weight;}
return variants[variants.length-1].id;}
function ago(W){var s=Math.max(0,Math.floor((now()-W)/1000));function u(n,x){return n+' '+x+(n===1?'':'s')+' ago';}
return s<60?'just now':s<3600?u(Math.floor(s/60),'minute'):s<86400?u(Math.floor(s/3600),'hour'):u(Math.floor(s/86400),'day');}
function ya(n){return String(n).replace(/\B(?=(\d{3})+(?!\d))/g,',');}
function join(runs,live){return(runs||[]).map(r=>{if(r.text!=null)return r.text;if(r.ago!=null)return ago(r.ago);if(r.live)return r.one!=null?(live===1?r.one:r.other):ya(live||0);return'';}).join('');}
function R(u){try{var x=new URL(u);return/^https?:$/.test(x.protocol)?x.href:null;}catch(e){return null;}}
function device(){var T=navigator.userAgent;if(/iPad|Tablet/i.test(T)||(/Android/i.test(T)&&!/Mobile/i.test(T)))return'tablet';return/Mobi|iPhone|iPod|Android/i.test(T)?'mobile':'desktop';}
function j(){return{url:location.href,referrer:d.referrer||null,device:device(),country:g.country,visitor:Ca?'returning':'new',now:now(),timezone:g.feed&&g.feed.timezone};}
function Ha(z){return!!z&&JSON.stringify(z).indexOf('"country"')>=0;}
function count(X){return+(ss.get('hc:'+X)||0);}
function sa(n){var c=j();return n.settings.devices.indexOf(c.device)>=0&&L(n.rules,c);}
function aa(){g.queue=[];if(!g.feed)return;g.feed.notifications.forEach(n=>{if(!sa(n))return;var I=Z(n.variants,n.id,J),cards=[];if(n.type==='recent_activity'){var items=(n.items||[]).slice();if(n.settings.order==='random')items.sort(()=>Math.random()-0.5);cards=items.map(y=>P(n,I,y));}else if(n.type==='counter'){var Y=n.byPath?n.byPath[location.pathname.replace(/(.)\/$/,'$1')]:n;if(Y&&Y.count>=(n.minimum||1))cards=[P(n,I,Y)];}else{cards=[P(n,I,n)];}
g.queue.push({n:n,cards:cards});});}
function P(n,I,y){var id=y.id&&y.id!==n.id?y.id:null;return{n:n,v:I,id:id,key:id||n.id,at:y.at,runs:(I&&y.variantRuns&&y.variantRuns[I])||y.runs,url:R(y.url||''),image:R(y.image||'')};}
function Aa(){for(var k=0;k<g.queue.length;k++){var q=g.queue.shift();g.queue.push(q);var s=q.n.settings,seen=g.shown[q.n.id]=g.shown[q.n.id]||{};if((seen._page||0)>=s.maxPerPage||count(q.n.id)>=s.maxPerSession)continue;var c=q.cards.filter(x=>!seen[x.key])[0];if(!c&&s.loop&&q.cards.length){g.shown[q.n.id]=seen={_page:seen._page};c=q.cards[0];}
if(!c)continue;seen[c.key]=1;seen._page=(seen._page||0)+1;return c;}
return null;}
function G(W){clearTimeout(g.timer);g.timer=setTimeout(Ea,W);}
function Ea(){if(!g.on||g.current)return;if(d.hidden)return G(1000);var c=Aa();if(!c)return;if(c.n.type==='live_visitors'){get(base+'/presence?path='+encodeURIComponent(location.pathname)).then(p=>{if(g.on&&p&&p.visitors>=(c.n.minimum||1))ia(c,p.visitors);else G(1000);},()=>{G(1000);});}else ia(c);}
var qa=':host{all:initial}'+'.b{position:fixed;z-index:2147483647;display:flex;flex-direction:column;gap:8px;max-width:min(360px,calc(100vw - 32px));font:14px/1.4 system-ui,sans-serif}'+'.c{box-sizing:border-box;display:flex;gap:10px;align-items:center;padding:12px 36px 12px 12px;border-radius:10px;position:relative;cursor:default;'+'background:var(--bg);color:var(--fg);box-shadow:0 6px 24px #0003;opacity:0;transform:translateY(8px);transition:opacity .3s,transform .3s}'+'.c.in{opacity:1;transform:none}.c.link{cursor:pointer}.c img{width:44px;height:44px;border-radius:6px;object-fit:cover;flex:none}'+'.m{margin:0;word-break:break-word}.t{font-size:12px;opacity:.7;margin-top:2px}'+'.x{position:absolute;top:6px;right:6px;width:24px;height:24px;border:0;border-radius:6px;background:transparent;color:inherit;font:18px/1 inherit;cursor:pointer;opacity:.6}'+'.x:focus-visible{opacity:1;outline:2px solid var(--ac)}.a{display:inline-block;margin-top:6px;color:var(--ac);font-weight:600;text-decoration:none}'+'@media (prefers-reduced-motion:reduce){.c{transition:none;transform:none}}';function za(){if(F)return;F=d.createElement('herald-notifications');C('loading');root=F.attachShadow({mode:'open'});var ka=d.createElement('style');ka.textContent=qa;root.appendChild(ka);box=A('div','b');root.appendChild(box);(d.body||d.documentElement).appendChild(F);}
function C(x){F&&F.setAttribute('data-state',x);}
function A(Fa,da,oa){var e=d.createElement(Fa);if(da)e.className=da;if(oa!=null)e.textContent=oa;return e;}
function ia(c,live){var s=c.n.settings,dark=s.theme==='dark',col=s.colors||{};var p=s.position.split('-');box.style.cssText=p[0]+':16px;'+p[1]+':16px';var e=A('div','c'+(c.url?' link':''));e.setAttribute('role','status');e.setAttribute('aria-live','polite');e.setAttribute('data-notification-id',c.n.id);if(c.v)e.setAttribute('data-variant-id',c.v);e.style.setProperty('--bg',col.background||(dark?'#1f2937':'#ffffff'));e.style.setProperty('--fg',col.text||(dark?'#f9fafb':'#1f2937'));e.style.setProperty('--ac',col.accent||'#2563eb');if(s.showImage&&c.image){var M=A('img');M.alt='';M.src=c.image;M.onerror=()=>{M.remove();};e.appendChild(M);}
var body=A('div');body.appendChild(A('p','m',join(c.runs,live)));if(s.showTimeAgo&&c.at&&c.n.type==='recent_activity')body.appendChild(A('div','t',ago(c.at)));if(c.n.cta&&R(c.n.cta.url)){var a=A('a','a',c.n.cta.text);a.href=R(c.n.cta.url);a.rel='noopener';a.onclick=K=>{K.stopPropagation();D('click',c);};body.appendChild(a);}
e.appendChild(body);var ca=false;function close(pa){if(ca)return;ca=true;if(pa)D('close',c);e.classList.remove('in');setTimeout(()=>{e.remove();},300);if(g.current===e)g.current=null;G((pa?0:s.gapSeconds*1000)+300);}
if(s.closable){var x=A('button','x','\u00d7');x.type='button';x.setAttribute('aria-label','Dismiss');x.onclick=K=>{K.stopPropagation();close(true);};e.appendChild(x);}
e.addEventListener('keydown',K=>{if(K.key==='Escape')close(true);});e.addEventListener('mouseenter',()=>{if(!e._h){e._h=1;D('hover',c);}clearTimeout(e._t);});e.addEventListener('mouseleave',()=>{e._t=setTimeout(()=>{close(false);},1500);});if(c.url)e.addEventListener('click',()=>{D('click',c);E();location.href=c.url;});box.appendChild(e);g.current=e;requestAnimationFrame(()=>{e.classList.add('in');});ss.set('hc:'+c.n.id,count(c.n.id)+1);D('impression',c);e._t=setTimeout(()=>{close(false);},s.displaySeconds*1000);}
function ba(){if(box)while(box.firstChild)box.removeChild(box.firstChild);g.current=null;}
function touches(){try{return JSON.parse(o.get('ht')).filter(x=>now()-x.at<2592e6);}catch(e){return[];}}
function D(type,c,goal,ta){if(!g.on)return;var t=now(),b={type:type,notificationId:c&&c.n.id,variantId:(c&&c.v)||undefined,activityId:(c&&c.id)||undefined,goal:goal,path:location.pathname,at:t};if(type==='impression'){if(!o.get('hf'))o.set('hf',t);if(c.v){b.exposure=!o.get('hx:'+c.n.id);o.set('hx:'+c.n.id,1);}}
if('impression hover click'.indexOf(type)>=0){var Q=touches();Q.push({notificationId:b.notificationId,variantId:b.variantId,type:type,at:t});o.set('ht',JSON.stringify(Q.slice(-20)));}
b.firstSeenAt=+o.get('hf')||undefined;g.beacons.push(Object.assign(b,ta));if(g.beacons.length>=40)E();}
function E(){if(!g.beacons.length)return;var body=JSON.stringify({visitorId:J,sessionId:ja,referrer:d.referrer,utm:utm,events:g.beacons.splice(0,50)});var url=base+'/beacons';if(!(navigator.sendBeacon&&navigator.sendBeacon(url,body)))fetch(url,{method:'POST',body:body,keepalive:true,credentials:'omit'}).catch(()=>{});}
setInterval(E,2000);d.addEventListener('visibilitychange',()=>{if(d.visibilityState==='hidden')E();});w.addEventListener('pagehide',E);function get(url){return fetch(url,{credentials:'omit'}).then(r=>{if(!r.ok)throw r.status;return r.json();});}
function V(va){return get(base+'/feed').then(f=>{g.feed=f;var current=g.current&&g.current.getAttribute('data-notification-id');if(current&&!f.notifications.some(n=>n.id===current))ba();aa();var live=f.notifications.some(n=>n.type==='live_visitors');if(live&&!g.hb){fa();g.hb=setInterval(fa,20000);}
if(f.notifications.some(n=>Ha(n.rules))&&g.country==null&&!g.es){get(base+'/context').then(c=>{g.country=c.country;aa();},()=>{});}
if(va)G(Math.min(...f.notifications.map(n=>n.settings.firstDelaySeconds),3600)*1000);else G(0);});}
function fa(){if(!g.on||d.visibilityState==='hidden')return;g.beacons.push({type:'heartbeat',path:location.pathname,at:now()});E();}
function ea(){if(!w.EventSource)return poll();var es=g.es=new EventSource(base+'/stream');es.onopen=()=>{g.fails=0;C('live');la();};es.addEventListener('hello',m=>{try{g.country=JSON.parse(m.data).country;}catch(e){}});es.addEventListener('feed',()=>{V(false);});es.addEventListener('activity',m=>{var p;try{p=JSON.parse(m.data);}catch(e){return;}
p.items.forEach(x=>{g.queue.forEach(q=>{if(q.n.id===x.notificationId&&!q.cards.some(c=>c.id===x.item.id)){q.cards.unshift(P(q.n,Z(q.n.variants,q.n.id,J),x.item));}});});G(0);});es.onerror=()=>{if(es.readyState!==2&&++g.fails<4)return;es.close();g.es=null;poll();setTimeout(()=>{if(g.on&&!g.es)ea();},Math.min(6e4,1e3*2**g.fails++));};}
function poll(){if(g.poll)return;C('polling');g.poll=setInterval(()=>{V(false).catch(()=>{});},20000);}
function la(){clearInterval(g.poll);g.poll=0;}
function S(){if(g.on)return;g.on=true;za();if(!g.pv){g.pv=1;D('pageview');if(N.getAttribute('data-push-worker'))get(base+'/push').then(p=>{if(p.enabled)d.head.appendChild(A('script')).src=base+'/../push-optin.js';},()=>{});}
V(true).then(ea,()=>{C('error');setTimeout(()=>{g.on=false;S();},30000);});}
function stop(){g.on=false;clearTimeout(g.timer);la();clearInterval(g.hb);g.hb=0;if(g.es){g.es.close();g.es=null;}
g.beacons=[];ba();if(F)C('stopped');}
w.Herald={v:1,stop:stop,resume:S,track:(goal,value)=>{var t=touches(),l=t.filter(x=>now()-x.at<6048e5).pop(),c=l?{n:{id:l.notificationId},v:l.variantId}:null;var x={value:typeof value=='number'?value:undefined,touches:t,previousConversionAt:+o.get('hp')||undefined};if(c&&c.v){x.firstConversion=!o.get('hy:'+c.n.id);o.set('hy:'+c.n.id,1);}
o.set('hp',now());D('conversion',c,String(goal||'conversion').slice(0,100),x);E();},_evaluate:L,_pick:Z};if(N.getAttribute('data-autostart')!=='false'){if(d.readyState==='loading')d.addEventListener('DOMContentLoaded',S);else S();}})(window,document);
