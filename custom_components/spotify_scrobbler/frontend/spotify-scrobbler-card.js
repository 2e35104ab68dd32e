var O=globalThis,N=O.ShadowRoot&&(O.ShadyCSS===void 0||O.ShadyCSS.nativeShadow)&&"adoptedStyleSheets"in Document.prototype&&"replace"in CSSStyleSheet.prototype,B=Symbol(),ot=new WeakMap,E=class{constructor(t,e,s){if(this._$cssResult$=!0,s!==B)throw Error("CSSResult is not constructable. Use `unsafeCSS` or `css` instead.");this.cssText=t,this.t=e}get styleSheet(){let t=this.o,e=this.t;if(N&&t===void 0){let s=e!==void 0&&e.length===1;s&&(t=ot.get(e)),t===void 0&&((this.o=t=new CSSStyleSheet).replaceSync(this.cssText),s&&ot.set(e,t))}return t}toString(){return this.cssText}},at=r=>new E(typeof r=="string"?r:r+"",void 0,B),z=(r,...t)=>{let e=r.length===1?r[0]:t.reduce((s,i,n)=>s+(o=>{if(o._$cssResult$===!0)return o.cssText;if(typeof o=="number")return o;throw Error("Value passed to 'css' function must be a 'css' function result: "+o+". Use 'unsafeCSS' to pass non-literal values, but take care to ensure page security.")})(i)+r[n+1],r[0]);return new E(e,r,B)},lt=(r,t)=>{if(N)r.adoptedStyleSheets=t.map(e=>e instanceof CSSStyleSheet?e:e.styleSheet);else for(let e of t){let s=document.createElement("style"),i=O.litNonce;i!==void 0&&s.setAttribute("nonce",i),s.textContent=e.cssText,r.appendChild(s)}},K=N?r=>r:r=>r instanceof CSSStyleSheet?(t=>{let e="";for(let s of t.cssRules)e+=s.cssText;return at(e)})(r):r;var{is:Ht,defineProperty:Mt,getOwnPropertyDescriptor:Ut,getOwnPropertyNames:Ot,getOwnPropertySymbols:Nt,getPrototypeOf:Lt}=Object,L=globalThis,ct=L.trustedTypes,It=ct?ct.emptyScript:"",Bt=L.reactiveElementPolyfillSupport,C=(r,t)=>r,j={toAttribute(r,t){switch(t){case Boolean:r=r?It:null;break;case Object:case Array:r=r==null?r:JSON.stringify(r)}return r},fromAttribute(r,t){let e=r;switch(t){case Boolean:e=r!==null;break;case Number:e=r===null?null:Number(r);break;case Object:case Array:try{e=JSON.parse(r)}catch{e=null}}return e}},dt=(r,t)=>!Ht(r,t),ht={attribute:!0,type:String,converter:j,reflect:!1,useDefault:!1,hasChanged:dt};Symbol.metadata??=Symbol("metadata"),L.litPropertyMetadata??=new WeakMap;var g=class extends HTMLElement{static addInitializer(t){this._$Ei(),(this.l??=[]).push(t)}static get observedAttributes(){return this.finalize(),this._$Eh&&[...this._$Eh.keys()]}static createProperty(t,e=ht){if(e.state&&(e.attribute=!1),this._$Ei(),this.prototype.hasOwnProperty(t)&&((e=Object.create(e)).wrapped=!0),this.elementProperties.set(t,e),!e.noAccessor){let s=Symbol(),i=this.getPropertyDescriptor(t,s,e);i!==void 0&&Mt(this.prototype,t,i)}}static getPropertyDescriptor(t,e,s){let{get:i,set:n}=Ut(this.prototype,t)??{get(){return this[e]},set(o){this[e]=o}};return{get:i,set(o){let l=i?.call(this);n?.call(this,o),this.requestUpdate(t,l,s)},configurable:!0,enumerable:!0}}static getPropertyOptions(t){return this.elementProperties.get(t)??ht}static _$Ei(){if(this.hasOwnProperty(C("elementProperties")))return;let t=Lt(this);t.finalize(),t.l!==void 0&&(this.l=[...t.l]),this.elementProperties=new Map(t.elementProperties)}static finalize(){if(this.hasOwnProperty(C("finalized")))return;if(this.finalized=!0,this._$Ei(),this.hasOwnProperty(C("properties"))){let e=this.properties,s=[...Ot(e),...Nt(e)];for(let i of s)this.createProperty(i,e[i])}let t=this[Symbol.metadata];if(t!==null){let e=litPropertyMetadata.get(t);if(e!==void 0)for(let[s,i]of e)this.elementProperties.set(s,i)}this._$Eh=new Map;for(let[e,s]of this.elementProperties){let i=this._$Eu(e,s);i!==void 0&&this._$Eh.set(i,e)}this.elementStyles=this.finalizeStyles(this.styles)}static finalizeStyles(t){let e=[];if(Array.isArray(t)){let s=new Set(t.flat(1/0).reverse());for(let i of s)e.unshift(K(i))}else t!==void 0&&e.push(K(t));return e}static _$Eu(t,e){let s=e.attribute;return s===!1?void 0:typeof s=="string"?s:typeof t=="string"?t.toLowerCase():void 0}constructor(){super(),this._$Ep=void 0,this.isUpdatePending=!1,this.hasUpdated=!1,this._$Em=null,this._$Ev()}_$Ev(){this._$ES=new Promise(t=>this.enableUpdating=t),this._$AL=new Map,this._$E_(),this.requestUpdate(),this.constructor.l?.forEach(t=>t(this))}addController(t){(this._$EO??=new Set).add(t),this.renderRoot!==void 0&&this.isConnected&&t.hostConnected?.()}removeController(t){this._$EO?.delete(t)}_$E_(){let t=new Map,e=this.constructor.elementProperties;for(let s of e.keys())this.hasOwnProperty(s)&&(t.set(s,this[s]),delete this[s]);t.size>0&&(this._$Ep=t)}createRenderRoot(){let t=this.shadowRoot??this.attachShadow(this.constructor.shadowRootOptions);return lt(t,this.constructor.elementStyles),t}connectedCallback(){this.renderRoot??=this.createRenderRoot(),this.enableUpdating(!0),this._$EO?.forEach(t=>t.hostConnected?.())}enableUpdating(t){}disconnectedCallback(){this._$EO?.forEach(t=>t.hostDisconnected?.())}attributeChangedCallback(t,e,s){this._$AK(t,s)}_$ET(t,e){let s=this.constructor.elementProperties.get(t),i=this.constructor._$Eu(t,s);if(i!==void 0&&s.reflect===!0){let n=(s.converter?.toAttribute!==void 0?s.converter:j).toAttribute(e,s.type);this._$Em=t,n==null?this.removeAttribute(i):this.setAttribute(i,n),this._$Em=null}}_$AK(t,e){let s=this.constructor,i=s._$Eh.get(t);if(i!==void 0&&this._$Em!==i){let n=s.getPropertyOptions(i),o=typeof n.converter=="function"?{fromAttribute:n.converter}:n.converter?.fromAttribute!==void 0?n.converter:j;this._$Em=i;let l=o.fromAttribute(e,n.type);this[i]=l??this._$Ej?.get(i)??l,this._$Em=null}}requestUpdate(t,e,s,i=!1,n){if(t!==void 0){let o=this.constructor;if(i===!1&&(n=this[t]),s??=o.getPropertyOptions(t),!((s.hasChanged??dt)(n,e)||s.useDefault&&s.reflect&&n===this._$Ej?.get(t)&&!this.hasAttribute(o._$Eu(t,s))))return;this.C(t,e,s)}this.isUpdatePending===!1&&(this._$ES=this._$EP())}C(t,e,{useDefault:s,reflect:i,wrapped:n},o){s&&!(this._$Ej??=new Map).has(t)&&(this._$Ej.set(t,o??e??this[t]),n!==!0||o!==void 0)||(this._$AL.has(t)||(this.hasUpdated||s||(e=void 0),this._$AL.set(t,e)),i===!0&&this._$Em!==t&&(this._$Eq??=new Set).add(t))}async _$EP(){this.isUpdatePending=!0;try{await this._$ES}catch(e){Promise.reject(e)}let t=this.scheduleUpdate();return t!=null&&await t,!this.isUpdatePending}scheduleUpdate(){return this.performUpdate()}performUpdate(){if(!this.isUpdatePending)return;if(!this.hasUpdated){if(this.renderRoot??=this.createRenderRoot(),this._$Ep){for(let[i,n]of this._$Ep)this[i]=n;this._$Ep=void 0}let s=this.constructor.elementProperties;if(s.size>0)for(let[i,n]of s){let{wrapped:o}=n,l=this[i];o!==!0||this._$AL.has(i)||l===void 0||this.C(i,void 0,n,l)}}let t=!1,e=this._$AL;try{t=this.shouldUpdate(e),t?(this.willUpdate(e),this._$EO?.forEach(s=>s.hostUpdate?.()),this.update(e)):this._$EM()}catch(s){throw t=!1,this._$EM(),s}t&&this._$AE(e)}willUpdate(t){}_$AE(t){this._$EO?.forEach(e=>e.hostUpdated?.()),this.hasUpdated||(this.hasUpdated=!0,this.firstUpdated(t)),this.updated(t)}_$EM(){this._$AL=new Map,this.isUpdatePending=!1}get updateComplete(){return this.getUpdateComplete()}getUpdateComplete(){return this._$ES}shouldUpdate(t){return!0}update(t){this._$Eq&&=this._$Eq.forEach(e=>this._$ET(e,this[e])),this._$EM()}updated(t){}firstUpdated(t){}};g.elementStyles=[],g.shadowRootOptions={mode:"open"},g[C("elementProperties")]=new Map,g[C("finalized")]=new Map,Bt?.({ReactiveElement:g}),(L.reactiveElementVersions??=[]).push("2.1.2");var J=globalThis,pt=r=>r,I=J.trustedTypes,ut=I?I.createPolicy("lit-html",{createHTML:r=>r}):void 0,$t="$lit$",f=`lit$${Math.random().toFixed(9).slice(2)}$`,vt="?"+f,zt=`<${vt}>`,b=document,P=()=>b.createComment(""),R=r=>r===null||typeof r!="object"&&typeof r!="function",Z=Array.isArray,Kt=r=>Z(r)||typeof r?.[Symbol.iterator]=="function",W=`[ 	
\f\r]`,T=/<(?:(!--|\/[^a-zA-Z])|(\/?[a-zA-Z][^>\s]*)|(\/?$))/g,mt=/-->/g,_t=/>/g,$=RegExp(`>|${W}(?:([^\\s"'>=/]+)(${W}*=${W}*(?:[^ 	
\f\r"'\`<>=]|("|')|))|$)`,"g"),gt=/'/g,yt=/"/g,bt=/^(?:script|style|textarea|title)$/i,Q=r=>(t,...e)=>({_$litType$:r,strings:t,values:e}),h=Q(1),X=Q(2),se=Q(3),A=Symbol.for("lit-noChange"),d=Symbol.for("lit-nothing"),ft=new WeakMap,v=b.createTreeWalker(b,129);function At(r,t){if(!Z(r)||!r.hasOwnProperty("raw"))throw Error("invalid template strings array");return ut!==void 0?ut.createHTML(t):t}var jt=(r,t)=>{let e=r.length-1,s=[],i,n=t===2?"<svg>":t===3?"<math>":"",o=T;for(let l=0;l<e;l++){let a=r[l],p,u,c=-1,_=0;for(;_<a.length&&(o.lastIndex=_,u=o.exec(a),u!==null);)_=o.lastIndex,o===T?u[1]==="!--"?o=mt:u[1]!==void 0?o=_t:u[2]!==void 0?(bt.test(u[2])&&(i=RegExp("</"+u[2],"g")),o=$):u[3]!==void 0&&(o=$):o===$?u[0]===">"?(o=i??T,c=-1):u[1]===void 0?c=-2:(c=o.lastIndex-u[2].length,p=u[1],o=u[3]===void 0?$:u[3]==='"'?yt:gt):o===yt||o===gt?o=$:o===mt||o===_t?o=T:(o=$,i=void 0);let y=o===$&&r[l+1].startsWith("/>")?" ":"";n+=o===T?a+zt:c>=0?(s.push(p),a.slice(0,c)+$t+a.slice(c)+f+y):a+f+(c===-2?l:y)}return[At(r,n+(r[e]||"<?>")+(t===2?"</svg>":t===3?"</math>":"")),s]},k=class r{constructor({strings:t,_$litType$:e},s){let i;this.parts=[];let n=0,o=0,l=t.length-1,a=this.parts,[p,u]=jt(t,e);if(this.el=r.createElement(p,s),v.currentNode=this.el.content,e===2||e===3){let c=this.el.content.firstChild;c.replaceWith(...c.childNodes)}for(;(i=v.nextNode())!==null&&a.length<l;){if(i.nodeType===1){if(i.hasAttributes())for(let c of i.getAttributeNames())if(c.endsWith($t)){let _=u[o++],y=i.getAttribute(c).split(f),U=/([.?@])?(.*)/.exec(_);a.push({type:1,index:n,name:U[2],strings:y,ctor:U[1]==="."?F:U[1]==="?"?V:U[1]==="@"?G:S}),i.removeAttribute(c)}else c.startsWith(f)&&(a.push({type:6,index:n}),i.removeAttribute(c));if(bt.test(i.tagName)){let c=i.textContent.split(f),_=c.length-1;if(_>0){i.textContent=I?I.emptyScript:"";for(let y=0;y<_;y++)i.append(c[y],P()),v.nextNode(),a.push({type:2,index:++n});i.append(c[_],P())}}}else if(i.nodeType===8)if(i.data===vt)a.push({type:2,index:n});else{let c=-1;for(;(c=i.data.indexOf(f,c+1))!==-1;)a.push({type:7,index:n}),c+=f.length-1}n++}}static createElement(t,e){let s=b.createElement("template");return s.innerHTML=t,s}};function x(r,t,e=r,s){if(t===A)return t;let i=s!==void 0?e._$Co?.[s]:e._$Cl,n=R(t)?void 0:t._$litDirective$;return i?.constructor!==n&&(i?._$AO?.(!1),n===void 0?i=void 0:(i=new n(r),i._$AT(r,e,s)),s!==void 0?(e._$Co??=[])[s]=i:e._$Cl=i),i!==void 0&&(t=x(r,i._$AS(r,t.values),i,s)),t}var q=class{constructor(t,e){this._$AV=[],this._$AN=void 0,this._$AD=t,this._$AM=e}get parentNode(){return this._$AM.parentNode}get _$AU(){return this._$AM._$AU}u(t){let{el:{content:e},parts:s}=this._$AD,i=(t?.creationScope??b).importNode(e,!0);v.currentNode=i;let n=v.nextNode(),o=0,l=0,a=s[0];for(;a!==void 0;){if(o===a.index){let p;a.type===2?p=new D(n,n.nextSibling,this,t):a.type===1?p=new a.ctor(n,a.name,a.strings,this,t):a.type===6&&(p=new Y(n,this,t)),this._$AV.push(p),a=s[++l]}o!==a?.index&&(n=v.nextNode(),o++)}return v.currentNode=b,i}p(t){let e=0;for(let s of this._$AV)s!==void 0&&(s.strings!==void 0?(s._$AI(t,s,e),e+=s.strings.length-2):s._$AI(t[e])),e++}},D=class r{get _$AU(){return this._$AM?._$AU??this._$Cv}constructor(t,e,s,i){this.type=2,this._$AH=d,this._$AN=void 0,this._$AA=t,this._$AB=e,this._$AM=s,this.options=i,this._$Cv=i?.isConnected??!0}get parentNode(){let t=this._$AA.parentNode,e=this._$AM;return e!==void 0&&t?.nodeType===11&&(t=e.parentNode),t}get startNode(){return this._$AA}get endNode(){return this._$AB}_$AI(t,e=this){t=x(this,t,e),R(t)?t===d||t==null||t===""?(this._$AH!==d&&this._$AR(),this._$AH=d):t!==this._$AH&&t!==A&&this._(t):t._$litType$!==void 0?this.$(t):t.nodeType!==void 0?this.T(t):Kt(t)?this.k(t):this._(t)}O(t){return this._$AA.parentNode.insertBefore(t,this._$AB)}T(t){this._$AH!==t&&(this._$AR(),this._$AH=this.O(t))}_(t){this._$AH!==d&&R(this._$AH)?this._$AA.nextSibling.data=t:this.T(b.createTextNode(t)),this._$AH=t}$(t){let{values:e,_$litType$:s}=t,i=typeof s=="number"?this._$AC(t):(s.el===void 0&&(s.el=k.createElement(At(s.h,s.h[0]),this.options)),s);if(this._$AH?._$AD===i)this._$AH.p(e);else{let n=new q(i,this),o=n.u(this.options);n.p(e),this.T(o),this._$AH=n}}_$AC(t){let e=ft.get(t.strings);return e===void 0&&ft.set(t.strings,e=new k(t)),e}k(t){Z(this._$AH)||(this._$AH=[],this._$AR());let e=this._$AH,s,i=0;for(let n of t)i===e.length?e.push(s=new r(this.O(P()),this.O(P()),this,this.options)):s=e[i],s._$AI(n),i++;i<e.length&&(this._$AR(s&&s._$AB.nextSibling,i),e.length=i)}_$AR(t=this._$AA.nextSibling,e){for(this._$AP?.(!1,!0,e);t!==this._$AB;){let s=pt(t).nextSibling;pt(t).remove(),t=s}}setConnected(t){this._$AM===void 0&&(this._$Cv=t,this._$AP?.(t))}},S=class{get tagName(){return this.element.tagName}get _$AU(){return this._$AM._$AU}constructor(t,e,s,i,n){this.type=1,this._$AH=d,this._$AN=void 0,this.element=t,this.name=e,this._$AM=i,this.options=n,s.length>2||s[0]!==""||s[1]!==""?(this._$AH=Array(s.length-1).fill(new String),this.strings=s):this._$AH=d}_$AI(t,e=this,s,i){let n=this.strings,o=!1;if(n===void 0)t=x(this,t,e,0),o=!R(t)||t!==this._$AH&&t!==A,o&&(this._$AH=t);else{let l=t,a,p;for(t=n[0],a=0;a<n.length-1;a++)p=x(this,l[s+a],e,a),p===A&&(p=this._$AH[a]),o||=!R(p)||p!==this._$AH[a],p===d?t=d:t!==d&&(t+=(p??"")+n[a+1]),this._$AH[a]=p}o&&!i&&this.j(t)}j(t){t===d?this.element.removeAttribute(this.name):this.element.setAttribute(this.name,t??"")}},F=class extends S{constructor(){super(...arguments),this.type=3}j(t){this.element[this.name]=t===d?void 0:t}},V=class extends S{constructor(){super(...arguments),this.type=4}j(t){this.element.toggleAttribute(this.name,!!t&&t!==d)}},G=class extends S{constructor(t,e,s,i,n){super(t,e,s,i,n),this.type=5}_$AI(t,e=this){if((t=x(this,t,e,0)??d)===A)return;let s=this._$AH,i=t===d&&s!==d||t.capture!==s.capture||t.once!==s.once||t.passive!==s.passive,n=t!==d&&(s===d||i);i&&this.element.removeEventListener(this.name,this,s),n&&this.element.addEventListener(this.name,this,t),this._$AH=t}handleEvent(t){typeof this._$AH=="function"?this._$AH.call(this.options?.host??this.element,t):this._$AH.handleEvent(t)}},Y=class{constructor(t,e,s){this.element=t,this.type=6,this._$AN=void 0,this._$AM=e,this.options=s}get _$AU(){return this._$AM._$AU}_$AI(t){x(this,t)}};var Wt=J.litHtmlPolyfillSupport;Wt?.(k,D),(J.litHtmlVersions??=[]).push("3.3.3");var xt=(r,t,e)=>{let s=e?.renderBefore??t,i=s._$litPart$;if(i===void 0){let n=e?.renderBefore??null;s._$litPart$=i=new D(t.insertBefore(P(),n),n,void 0,e??{})}return i._$AI(r),i};var tt=globalThis,m=class extends g{constructor(){super(...arguments),this.renderOptions={host:this},this._$Do=void 0}createRenderRoot(){let t=super.createRenderRoot();return this.renderOptions.renderBefore??=t.firstChild,t}update(t){let e=this.render();this.hasUpdated||(this.renderOptions.isConnected=this.isConnected),super.update(t),this._$Do=xt(e,this.renderRoot,this.renderOptions)}connectedCallback(){super.connectedCallback(),this._$Do?.setConnected(!0)}disconnectedCallback(){super.disconnectedCallback(),this._$Do?.setConnected(!1)}render(){return A}};m._$litElement$=!0,m.finalized=!0,tt.litElementHydrateSupport?.({LitElement:m});var qt=tt.litElementPolyfillSupport;qt?.({LitElement:m});(tt.litElementVersions??=[]).push("4.2.2");var St=300,et=80,wt=1;function Et(r,t){let e=Math.max(1,...r.map(i=>i.plays)),s=St/Math.max(1,r.length);return X`<svg class="chart" viewBox="0 0 ${St} ${et}" preserveAspectRatio="none"
      role="img" aria-label=${r.map(t).join("; ")}>
    ${r.map((i,n)=>{let o=i.plays/e*(et-2);return X`<rect x=${n*s+wt/2} y=${et-o}
          width=${Math.max(1,s-wt)} height=${o} rx="1.5">
        <title>${t(i)}</title></rect>`})}
  </svg>`}var Tt="spotify_scrobbler",Ft=["tracks","artists","albums"];function Pt(r){return r.callWS({type:`${Tt}/accounts`})}async function Ct(r,t,e){return(await r.callWS({type:"call_service",domain:Tt,service:t,service_data:e,return_response:!0})).response}function Vt(r,t){let e=new Date(t.getFullYear(),t.getMonth(),t.getDate());switch(r){case"today":return e;case"week":return new Date(e.getFullYear(),e.getMonth(),e.getDate()-(e.getDay()+6)%7);case"month":return new Date(e.getFullYear(),e.getMonth(),1);case"year":return new Date(e.getFullYear(),0,1);default:return null}}function st(r){return r==="today"?"hour":r==="year"?"week":r==="all_time"?"month":"day"}async function Gt(r,t,e,s){let i=Vt(e,s)??new Date(0);return((await r.callWS({type:"recorder/statistics_during_period",start_time:i.toISOString(),statistic_ids:[t],period:st(e),types:["change"]}))[t]??[]).map(o=>({start:o.start,plays:Math.max(0,Math.round(o.change??0))}))}async function Rt(r,t,e,s,i,n=new Date){let o=Ft.filter(c=>s.includes(c)),l={config_entry_id:t.entry_id},[a,p,u]=await Promise.all([o.length?Ct(r,"top",{...l,period:e,kinds:o,limit:i}):Promise.resolve({}),s.includes("recent")?Ct(r,"recent_plays",{...l,count:i}).then(c=>c.plays):Promise.resolve([]),s.includes("chart")?Gt(r,t.plays_statistic_id,e,n):Promise.resolve([])]);return{top:a,recent:p,bars:u}}var kt={"period.today":"Today","period.week":"This week","period.month":"This month","period.year":"This year","period.all_time":"All time","section.tracks":"Top tracks","section.artists":"Top artists","section.albums":"Top albums","section.chart":"Listening","section.recent":"Recently played","unit.plays":"{count} plays","unit.play":"1 play","unit.minutes":"{count} min","chart.plays_in":"{count} plays, {label}","empty.period":"No plays in this period yet.","empty.recent":"Nothing played yet.","empty.chart":"No listening recorded in this period yet.","error.load":"Could not load the statistics: {message}","error.no_account":"Choose an account in the card's settings.","error.account_gone":"This account is no longer set up in Spotify Scrobbler.","action.retry":"Retry",loading:"Loading\u2026","status.rate_limited":"Spotify rate-limits the account until {time}.","status.rate_limited_unknown":"Spotify rate-limits the account.","status.mongodb_unavailable":"MongoDB is unavailable.","status.spotify_unavailable":"Spotify is unavailable.","status.premium_required":"Spotify needs the app owner to have Premium.","status.pending":"{count} plays waiting to be stored.","status.pending_one":"1 play waiting to be stored.","editor.entry_id":"Account","editor.period":"Period","editor.show":"What to show","editor.limit":"Entries per list","editor.title":"Title (optional)","show.tracks":"Top tracks","show.artists":"Top artists","show.albums":"Top albums","show.chart":"Listening chart","show.recent":"Recent plays","card.name":"Spotify Scrobbler statistics","card.description":"Top tracks, artists and albums, listening per day and recent plays."},Yt={"period.today":"Heute","period.week":"Diese Woche","period.month":"Dieser Monat","period.year":"Dieses Jahr","period.all_time":"Gesamt","section.tracks":"Top-Titel","section.artists":"Top-K\xFCnstler","section.albums":"Top-Alben","section.chart":"H\xF6ren","section.recent":"Zuletzt gespielt","unit.plays":"{count} Wiedergaben","unit.play":"1 Wiedergabe","empty.period":"In diesem Zeitraum noch nichts gespielt.","action.retry":"Erneut versuchen",loading:"Wird geladen\u2026"},Jt={en:kt,de:Yt};function w(r,t,e={}){let s=(r??"en").split("-")[0];return(Jt[s]?.[t]??kt[t]).replace(/\{(\w+)\}/g,(n,o)=>String(e[o]??""))}var H=["today","week","month","year","all_time"],M=["tracks","artists","albums","chart","recent"];var it=class extends m{static{this.properties={hass:{attribute:!1},_config:{state:!0}}}setConfig(t){this._config=t}_t(t){return w(this.hass?.locale?.language??this.hass?.language,t)}_schema(){return[{name:"entry_id",required:!0,selector:{config_entry:{integration:"spotify_scrobbler"}}},{name:"period",selector:{select:{mode:"dropdown",options:H.map(t=>({value:t,label:this._t(`period.${t}`)}))}}},{name:"show",selector:{select:{multiple:!0,options:M.map(t=>({value:t,label:this._t(`show.${t}`)}))}}},{name:"limit",selector:{number:{min:1,max:20,mode:"box"}}},{name:"title",selector:{text:{}}}]}render(){return!this.hass||!this._config?h``:h`<ha-form
      .hass=${this.hass}
      .data=${{period:"week",limit:5,show:[...M],...this._config}}
      .schema=${this._schema()}
      .computeLabel=${t=>this._t(`editor.${t.name}`)}
      @value-changed=${this._changed}
    ></ha-form>`}_changed(t){t.stopPropagation();let e={...t.detail.value};e.title||delete e.title,this._config=e,this.dispatchEvent(new CustomEvent("config-changed",{detail:{config:e},bubbles:!0,composed:!0}))}};customElements.define("spotify-scrobbler-card-editor",it);var Zt=["tracks","artists","albums","chart","recent"],Dt=5,rt=class extends m{constructor(){super(...arguments);this._period="week";this._load={state:"loading"};this._request=0}static{this.properties={hass:{attribute:!1},_config:{state:!0},_period:{state:!0},_load:{state:!0},_account:{state:!0}}}static getConfigElement(){return document.createElement("spotify-scrobbler-card-editor")}static getStubConfig(){return{type:"custom:spotify-scrobbler-card",period:"week",limit:Dt}}setConfig(e){if(e.period!==void 0&&!H.includes(e.period))throw new Error(`Unknown period: ${e.period}`);if(e.show?.some(s=>!M.includes(s)))throw new Error(`Unknown section in show: ${e.show.join(", ")}`);this._config=e,this._period=e.period??"week",this._account=void 0}getCardSize(){return 2+this._show().length*3}_show(){return this._config?.show??Zt}_t(e,s){return w(this.hass?.locale?.language??this.hass?.language,e,s)}updated(e){if(!this.hass||!this._config)return;if(e.has("_config")||e.has("_period")){this._refresh();return}let s=this._account?.total_entity_id,i=s?this.hass.states[s]?.state:void 0;e.has("hass")&&i!==this._lastTotal&&(this._lastTotal=i,this._load.state!=="loading"&&this._refresh())}async _refresh(){let e=this.hass,s=this._config;if(!e||!s)return;let i=++this._request;this._load.state!=="ready"&&(this._load={state:"loading"});try{let n=await this._findAccount(e,s);if(i!==this._request)return;if(!n){this._load={state:"error",message:s.entry_id?"error.account_gone":"error.no_account"};return}this._account=n,this._lastTotal=n.total_entity_id?e.states[n.total_entity_id]?.state:void 0;let o=s.limit??Dt,l=await Rt(e,n,this._period,this._show(),o);i===this._request&&(this._load={state:"ready",data:l})}catch(n){if(i!==this._request)return;let o=n instanceof Error?n.message:String(n?.message??n);this._load={state:"error",message:"error.load",detail:o}}}async _findAccount(e,s){if(this._account&&(!s.entry_id||this._account.entry_id===s.entry_id))return this._account;let i=await Pt(e);return s.entry_id?i.find(n=>n.entry_id===s.entry_id):i[0]}render(){let e=this._config?.title??this._account?.title??this._t("card.name");return h`<ha-card>
      <div class="header">
        <h1 class="title">${e}</h1>
        <div class="periods" role="group" aria-label=${this._t("editor.period")}>
          ${H.map(s=>h`<button
              type="button"
              class="period"
              aria-pressed=${s===this._period?"true":"false"}
              @click=${()=>this._period=s}
            >
              ${this._t(`period.${s}`)}
            </button>`)}
        </div>
      </div>
      ${this._status()}
      <div class="content" aria-busy=${this._load.state==="loading"?"true":"false"}>
        ${this._body()}
      </div>
    </ha-card>`}_status(){let e=this._account;if(!e||!this.hass)return d;let s=[],i=e.status_entity_id?this.hass.states[e.status_entity_id]:void 0;if(i&&i.state!=="ok"&&i.state!=="unavailable"&&i.state!=="unknown"){let o=i.attributes.retry_at;i.state==="rate_limited"?s.push(typeof o=="string"?this._t("status.rate_limited",{time:this._clock(o)}):this._t("status.rate_limited_unknown")):(i.state==="mongodb_unavailable"||i.state==="spotify_unavailable"||i.state==="premium_required")&&s.push(this._t(`status.${i.state}`))}let n=e.pending_entity_id?Number(this.hass.states[e.pending_entity_id]?.state):0;return n>0&&s.push(n===1?this._t("status.pending_one"):this._t("status.pending",{count:n})),s.length?h`<div class="status" role="status">
      <ha-icon icon="mdi:alert-circle-outline"></ha-icon><span>${s.join(" ")}</span>
    </div>`:d}_body(){let e=this._load;if(e.state==="loading")return h`<div class="placeholder">${this._t("loading")}</div>`;if(e.state==="error")return h`<div class="placeholder error">
        <span>${this._t(e.message,{message:e.detail??""})}</span>
        ${e.message==="error.load"?h`<button type="button" class="retry" @click=${()=>{this._refresh()}}>
              ${this._t("action.retry")}
            </button>`:d}
      </div>`;let s=this._show(),i=e.data,n=["tracks","artists","albums"].every(o=>!s.includes(o)||!(i.top[o]?.length??0));return h`
      ${s.some(o=>o==="tracks"||o==="artists"||o==="albums")&&n?h`<div class="placeholder">${this._t("empty.period")}</div>`:h`<div class="tops">
            ${["tracks","artists","albums"].filter(o=>s.includes(o)).map(o=>this._top(o,i.top[o]??[]))}
          </div>`}
      ${s.includes("chart")?this._chart(i.bars):d}
      ${s.includes("recent")?this._recent(i.recent):d}
    `}_top(e,s){return h`<section class="top">
      <h2>${this._t(`section.${e}`)}</h2>
      <ol>
        ${s.map(i=>h`<li>
            ${this._cover(i.image_url,e==="artists")}
            <div class="text">
              ${this._link(i.name,i.spotify_url)}
              ${i.artist_names?.length?h`<span class="secondary">${i.artist_names.join(", ")}</span>`:d}
            </div>
            <div class="numbers">
              <span>${i.plays===1?this._t("unit.play"):this._t("unit.plays",{count:i.plays})}</span>
              <span class="secondary"
                >${this._t("unit.minutes",{count:Math.round(i.listening_ms/6e4)})}</span
              >
            </div>
          </li>`)}
      </ol>
    </section>`}_chart(e){let s=e.reduce((i,n)=>i+n.plays,0);return h`<section class="listening">
      <h2>${this._t("section.chart")}</h2>
      ${s===0?h`<div class="placeholder">${this._t("empty.chart")}</div>`:Et(e,i=>this._t("chart.plays_in",{count:i.plays,label:this._barLabel(i)}))}
    </section>`}_recent(e){let s=Date.now();return h`<section class="recent">
      <h2>${this._t("section.recent")}</h2>
      ${e.length===0?h`<div class="placeholder">${this._t("empty.recent")}</div>`:h`<ol>
            ${e.map(i=>h`<li>
                ${this._cover(i.image_url,!1)}
                <div class="text">
                  ${this._link(i.track_name??i.track_id,i.spotify_url)}
                  <span class="secondary">${i.artist_names.join(", ")}</span>
                </div>
                <time class="secondary" datetime=${i.played_at} title=${new Date(i.played_at).toLocaleString(this._language())}
                  >${this._relative(Date.parse(i.played_at),s)}</time
                >
              </li>`)}
          </ol>`}
    </section>`}_cover(e,s){return e?h`<img class=${s?"cover round":"cover"} src=${e} alt="" loading="lazy" />`:h`<div class=${s?"cover round empty":"cover empty"}></div>`}_link(e,s){return s?h`<a class="name" href=${s} target="_blank" rel="noreferrer">${e}</a>`:h`<span class="name">${e}</span>`}_language(){return this.hass?.locale?.language??this.hass?.language??"en"}_relative(e,s){let i=new Intl.RelativeTimeFormat(this._language(),{numeric:"auto"}),n=Math.round((e-s)/1e3),o=[["second",60],["minute",60],["hour",24],["day",7],["week",4.35],["month",12],["year",1/0]],l=n;for(let[a,p]of o){if(Math.abs(l)<p)return i.format(Math.round(l),a);l/=p}return i.format(Math.round(l),"year")}_clock(e){return new Date(e).toLocaleTimeString(this._language(),{hour:"2-digit",minute:"2-digit"})}_barLabel(e){let s=new Date(e.start),i=this._language();switch(st(this._period)){case"hour":return s.toLocaleTimeString(i,{hour:"2-digit",minute:"2-digit"});case"month":return s.toLocaleDateString(i,{year:"numeric",month:"short"});default:return s.toLocaleDateString(i,{month:"short",day:"numeric"})}}static{this.styles=z`
    ha-card {
      padding: 16px;
      display: flex;
      flex-direction: column;
      gap: 12px;
    }
    .header {
      display: flex;
      flex-wrap: wrap;
      align-items: center;
      justify-content: space-between;
      gap: 8px;
    }
    .title {
      margin: 0;
      font-size: 1.25em;
      font-weight: 500;
      color: var(--primary-text-color);
    }
    .periods {
      display: flex;
      flex-wrap: wrap;
      gap: 4px;
    }
    button {
      font: inherit;
      cursor: pointer;
      border-radius: 16px;
      padding: 4px 10px;
      border: 1px solid var(--divider-color);
      background: transparent;
      color: var(--primary-text-color);
    }
    button[aria-pressed="true"] {
      background: var(--primary-color);
      border-color: var(--primary-color);
      color: var(--text-primary-color, #fff);
    }
    button:focus-visible {
      outline: 2px solid var(--primary-color);
      outline-offset: 2px;
    }
    .status {
      display: flex;
      align-items: center;
      gap: 8px;
      padding: 8px 12px;
      border-radius: 8px;
      color: var(--primary-text-color);
      background: rgba(var(--rgb-warning-color, 255, 166, 0), 0.15);
    }
    .status ha-icon {
      color: var(--warning-color);
      flex: none;
    }
    .content {
      display: flex;
      flex-direction: column;
      gap: 16px;
    }
    .tops {
      display: grid;
      grid-template-columns: repeat(auto-fit, minmax(220px, 1fr));
      gap: 16px;
    }
    h2 {
      margin: 0 0 8px;
      font-size: 1em;
      font-weight: 500;
      color: var(--secondary-text-color);
    }
    ol {
      list-style: none;
      margin: 0;
      padding: 0;
      display: flex;
      flex-direction: column;
      gap: 8px;
    }
    li {
      display: flex;
      align-items: center;
      gap: 10px;
      min-width: 0;
    }
    .cover {
      width: 40px;
      height: 40px;
      flex: none;
      border-radius: 4px;
      object-fit: cover;
      background: var(--secondary-background-color);
    }
    .cover.round {
      border-radius: 50%;
    }
    .text {
      display: flex;
      flex-direction: column;
      min-width: 0;
      flex: 1;
    }
    .name,
    .secondary {
      overflow: hidden;
      text-overflow: ellipsis;
      white-space: nowrap;
    }
    .name {
      color: var(--primary-text-color);
      text-decoration: none;
    }
    a.name:hover,
    a.name:focus-visible {
      text-decoration: underline;
    }
    .secondary {
      color: var(--secondary-text-color);
      font-size: 0.9em;
    }
    .numbers {
      display: flex;
      flex-direction: column;
      align-items: flex-end;
      flex: none;
      font-variant-numeric: tabular-nums;
    }
    .chart {
      width: 100%;
      height: 80px;
      display: block;
    }
    .chart rect {
      fill: var(--primary-color);
    }
    .placeholder {
      color: var(--secondary-text-color);
      padding: 8px 0;
      display: flex;
      align-items: center;
      gap: 12px;
      flex-wrap: wrap;
    }
    .error {
      color: var(--error-color);
    }
  `}};customElements.define("spotify-scrobbler-card",rt);var nt=window;nt.customCards=nt.customCards??[];nt.customCards.push({type:"spotify-scrobbler-card",name:w(navigator.language,"card.name"),description:w(navigator.language,"card.description"),preview:!0,documentationURL:"https://github.com/spotify-scrobbler/spotify_scrobbler#statistics-card"});export{rt as SpotifyScrobblerCard};
