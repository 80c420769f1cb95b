//! kro v0.9.3's CEL function declarations: every overload of its default environment (cel-go's
//! standard library, the strings, lists, encoders, optional, two-variable comprehension and bind
//! extensions, the Kubernetes libraries and kro's own), as one table read at start-up. Each line
//! is `name|g or m (global or member)|argument types|result type`; for member overloads the first
//! argument is the receiver.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use super::types::{Type, parse_type, split_params};

/// One overload of a function.
#[derive(Clone, Debug)]
pub struct Overload {
    pub member: bool,
    pub args: Vec<Type>,
    pub result: Type,
    /// The overload's type parameters (`A`, `K`, `V`), renamed per use by the checker.
    pub params: Vec<String>,
}

const SIGNATURES: &str = "\
!_|g|bool|bool
-_|g|double|double
-_|g|int|int
@in|g|<A>,list(<A>)|bool
@in|g|<A>,map(<A>, <B>)|bool
@not_strictly_false|g|bool|bool
@sortByAssociatedKeys|m|list(<T>),list(int)|list(<T>)
@sortByAssociatedKeys|m|list(<T>),list(uint)|list(<T>)
@sortByAssociatedKeys|m|list(<T>),list(double)|list(<T>)
@sortByAssociatedKeys|m|list(<T>),list(bool)|list(<T>)
@sortByAssociatedKeys|m|list(<T>),list(google.protobuf.Duration)|list(<T>)
@sortByAssociatedKeys|m|list(<T>),list(google.protobuf.Timestamp)|list(<T>)
@sortByAssociatedKeys|m|list(<T>),list(string)|list(<T>)
@sortByAssociatedKeys|m|list(<T>),list(bytes)|list(<T>)
_!=_|g|<A>,<A>|bool
_%_|g|int,int|int
_%_|g|uint,uint|uint
_&&_|g|bool,bool|bool
_*_|g|double,double|double
_*_|g|int,int|int
_*_|g|uint,uint|uint
_+_|g|bytes,bytes|bytes
_+_|g|double,double|double
_+_|g|google.protobuf.Duration,google.protobuf.Duration|google.protobuf.Duration
_+_|g|google.protobuf.Duration,google.protobuf.Timestamp|google.protobuf.Timestamp
_+_|g|google.protobuf.Timestamp,google.protobuf.Duration|google.protobuf.Timestamp
_+_|g|int,int|int
_+_|g|list(<A>),list(<A>)|list(<A>)
_+_|g|string,string|string
_+_|g|uint,uint|uint
_-_|g|double,double|double
_-_|g|google.protobuf.Duration,google.protobuf.Duration|google.protobuf.Duration
_-_|g|int,int|int
_-_|g|google.protobuf.Timestamp,google.protobuf.Duration|google.protobuf.Timestamp
_-_|g|google.protobuf.Timestamp,google.protobuf.Timestamp|google.protobuf.Duration
_-_|g|uint,uint|uint
_/_|g|double,double|double
_/_|g|int,int|int
_/_|g|uint,uint|uint
_<=_|g|bool,bool|bool
_<=_|g|int,int|bool
_<=_|g|int,double|bool
_<=_|g|int,uint|bool
_<=_|g|uint,uint|bool
_<=_|g|uint,double|bool
_<=_|g|uint,int|bool
_<=_|g|double,double|bool
_<=_|g|double,int|bool
_<=_|g|double,uint|bool
_<=_|g|string,string|bool
_<=_|g|bytes,bytes|bool
_<=_|g|google.protobuf.Timestamp,google.protobuf.Timestamp|bool
_<=_|g|google.protobuf.Duration,google.protobuf.Duration|bool
_<_|g|bool,bool|bool
_<_|g|int,int|bool
_<_|g|int,double|bool
_<_|g|int,uint|bool
_<_|g|uint,uint|bool
_<_|g|uint,double|bool
_<_|g|uint,int|bool
_<_|g|double,double|bool
_<_|g|double,int|bool
_<_|g|double,uint|bool
_<_|g|string,string|bool
_<_|g|bytes,bytes|bool
_<_|g|google.protobuf.Timestamp,google.protobuf.Timestamp|bool
_<_|g|google.protobuf.Duration,google.protobuf.Duration|bool
_==_|g|<A>,<A>|bool
_>=_|g|bool,bool|bool
_>=_|g|int,int|bool
_>=_|g|int,double|bool
_>=_|g|int,uint|bool
_>=_|g|uint,uint|bool
_>=_|g|uint,double|bool
_>=_|g|uint,int|bool
_>=_|g|double,double|bool
_>=_|g|double,int|bool
_>=_|g|double,uint|bool
_>=_|g|string,string|bool
_>=_|g|bytes,bytes|bool
_>=_|g|google.protobuf.Timestamp,google.protobuf.Timestamp|bool
_>=_|g|google.protobuf.Duration,google.protobuf.Duration|bool
_>_|g|bool,bool|bool
_>_|g|int,int|bool
_>_|g|int,double|bool
_>_|g|int,uint|bool
_>_|g|uint,uint|bool
_>_|g|uint,double|bool
_>_|g|uint,int|bool
_>_|g|double,double|bool
_>_|g|double,int|bool
_>_|g|double,uint|bool
_>_|g|string,string|bool
_>_|g|bytes,bytes|bool
_>_|g|google.protobuf.Timestamp,google.protobuf.Timestamp|bool
_>_|g|google.protobuf.Duration,google.protobuf.Duration|bool
_?._|g|dyn,string|optional_type(<V>)
_?_:_|g|bool,<A>,<A>|<A>
_[?_]|g|list(<V>),int|optional_type(<V>)
_[?_]|g|optional_type(list(<V>)),int|optional_type(<V>)
_[?_]|g|map(<K>, <V>),<K>|optional_type(<V>)
_[?_]|g|optional_type(map(<K>, <V>)),<K>|optional_type(<V>)
_[_]|g|list(<A>),int|<A>
_[_]|g|map(<A>, <B>),<A>|<B>
_[_]|g|optional_type(list(<V>)),int|optional_type(<V>)
_[_]|g|optional_type(map(<K>, <V>)),<K>|optional_type(<V>)
__not_strictly_false__|g|bool|bool
_in_|g|<A>,list(<A>)|bool
_in_|g|<A>,map(<A>, <B>)|bool
_||_|g|bool,bool|bool
add|m|kubernetes.Quantity,kubernetes.Quantity|kubernetes.Quantity
add|m|kubernetes.Quantity,int|kubernetes.Quantity
asApproximateFloat|m|kubernetes.Quantity|double
asInteger|m|kubernetes.Quantity|int
base64.decode|g|string|bytes
base64.encode|g|bytes|string
bool|g|bool|bool
bool|g|string|bool
bytes|g|bytes|bytes
bytes|g|string|bytes
cel.@block|g|list(dyn),<T>|<T>
cel.@mapInsert|g|map(<K>, <V>),<K>,<V>|map(<K>, <V>)
cel.@mapInsert|g|map(<K>, <V>),map(<K>, <V>)|map(<K>, <V>)
charAt|m|string,int|string
cidr|g|string|net.CIDR
compareTo|m|kubernetes.Quantity,kubernetes.Quantity|int
compareTo|m|kubernetes.Semver,kubernetes.Semver|int
condition|m|kro.run.Runtime,dyn,string|kro.run.Condition
contains|m|string,string|bool
containsCIDR|m|net.CIDR,string|bool
containsCIDR|m|net.CIDR,net.CIDR|bool
containsIP|m|net.CIDR,string|bool
containsIP|m|net.CIDR,net.IP|bool
distinct|m|list(<T>)|list(<T>)
double|g|double|double
double|g|int|double
double|g|string|double
double|g|uint|double
duration|g|google.protobuf.Duration|google.protobuf.Duration
duration|g|int|google.protobuf.Duration
duration|g|string|google.protobuf.Duration
dyn|g|<A>|dyn
endsWith|m|string,string|bool
family|m|net.IP|int
find|m|string,string|string
findAll|m|string,string|list(string)
findAll|m|string,string,int|list(string)
first|m|list(<V>)|optional_type(<V>)
flatten|m|list(list(<T>))|list(<T>)
flatten|m|list(dyn),int|list(dyn)
format|m|string,list(dyn)|string
getDate|m|google.protobuf.Timestamp|int
getDate|m|google.protobuf.Timestamp,string|int
getDayOfMonth|m|google.protobuf.Timestamp|int
getDayOfMonth|m|google.protobuf.Timestamp,string|int
getDayOfWeek|m|google.protobuf.Timestamp|int
getDayOfWeek|m|google.protobuf.Timestamp,string|int
getDayOfYear|m|google.protobuf.Timestamp|int
getDayOfYear|m|google.protobuf.Timestamp,string|int
getEscapedPath|m|kubernetes.URL|string
getFullYear|m|google.protobuf.Timestamp|int
getFullYear|m|google.protobuf.Timestamp,string|int
getHost|m|kubernetes.URL|string
getHostname|m|kubernetes.URL|string
getHours|m|google.protobuf.Timestamp|int
getHours|m|google.protobuf.Timestamp,string|int
getHours|m|google.protobuf.Duration|int
getMilliseconds|m|google.protobuf.Timestamp|int
getMilliseconds|m|google.protobuf.Timestamp,string|int
getMilliseconds|m|google.protobuf.Duration|int
getMinutes|m|google.protobuf.Timestamp|int
getMinutes|m|google.protobuf.Timestamp,string|int
getMinutes|m|google.protobuf.Duration|int
getMonth|m|google.protobuf.Timestamp|int
getMonth|m|google.protobuf.Timestamp,string|int
getPort|m|kubernetes.URL|string
getQuery|m|kubernetes.URL|map(string, list(string))
getScheme|m|kubernetes.URL|string
getSeconds|m|google.protobuf.Timestamp|int
getSeconds|m|google.protobuf.Timestamp,string|int
getSeconds|m|google.protobuf.Duration|int
hasValue|m|optional_type(<V>)|bool
hash.fnv64a|g|string|bytes
hash.md5|g|string|bytes
hash.sha256|g|string|bytes
in|g|<A>,list(<A>)|bool
in|g|<A>,map(<A>, <B>)|bool
indexOf|m|string,string|int
indexOf|m|string,string,int|int
indexOf|m|list(<A>),<A>|int
int|g|int|int
int|g|double|int
int|g|google.protobuf.Duration|int
int|g|string|int
int|g|google.protobuf.Timestamp|int
int|g|uint|int
ip|g|string|net.IP
ip|m|net.CIDR|net.IP
ip.isCanonical|g|string|bool
isCIDR|g|string|bool
isGlobalUnicast|m|net.IP|bool
isGreaterThan|m|kubernetes.Quantity,kubernetes.Quantity|bool
isGreaterThan|m|kubernetes.Semver,kubernetes.Semver|bool
isIP|g|string|bool
isInteger|m|kubernetes.Quantity|bool
isLessThan|m|kubernetes.Quantity,kubernetes.Quantity|bool
isLessThan|m|kubernetes.Semver,kubernetes.Semver|bool
isLinkLocalMulticast|m|net.IP|bool
isLinkLocalUnicast|m|net.IP|bool
isLoopback|m|net.IP|bool
isQuantity|g|string|bool
isSemver|g|string|bool
isSorted|m|list(int)|bool
isSorted|m|list(uint)|bool
isSorted|m|list(double)|bool
isSorted|m|list(bool)|bool
isSorted|m|list(google.protobuf.Duration)|bool
isSorted|m|list(google.protobuf.Timestamp)|bool
isSorted|m|list(string)|bool
isSorted|m|list(bytes)|bool
isURL|g|string|bool
isUnspecified|m|net.IP|bool
join|m|list(string)|string
join|m|list(string),string|string
json.marshal|g|dyn|string
json.unmarshal|g|string|dyn
last|m|list(<V>)|optional_type(<V>)
lastIndexOf|m|string,string|int
lastIndexOf|m|string,string,int|int
lastIndexOf|m|list(<A>),<A>|int
lists.insertAtIndex|g|list(<T>),int,<T>|list(<T>)
lists.range|g|int|list(int)
lists.removeAtIndex|g|list(<T>),int|list(<T>)
lists.setAtIndex|g|list(<T>),int,<T>|list(<T>)
lowerAscii|m|string|string
major|m|kubernetes.Semver|int
masked|m|net.CIDR|net.CIDR
matches|g|string,string|bool
matches|m|string,string|bool
max|m|list(int)|int
max|m|list(uint)|uint
max|m|list(double)|double
max|m|list(bool)|bool
max|m|list(google.protobuf.Duration)|google.protobuf.Duration
max|m|list(google.protobuf.Timestamp)|google.protobuf.Timestamp
max|m|list(string)|string
max|m|list(bytes)|bytes
merge|m|map(<K>, <V>),map(<K>, <V>)|map(<K>, <V>)
min|m|list(int)|int
min|m|list(uint)|uint
min|m|list(double)|double
min|m|list(bool)|bool
min|m|list(google.protobuf.Duration)|google.protobuf.Duration
min|m|list(google.protobuf.Timestamp)|google.protobuf.Timestamp
min|m|list(string)|string
min|m|list(bytes)|bytes
minor|m|kubernetes.Semver|int
newCondition|m|kro.run.Runtime,map(string, string)|kro.run.Condition
omit|g||dyn
optional.none|g||optional_type(<V>)
optional.of|g|<V>|optional_type(<V>)
optional.ofNonZeroValue|g|<V>|optional_type(<V>)
optional.unwrap|g|list(optional_type(<V>))|list(<V>)
or|m|optional_type(<V>),optional_type(<V>)|optional_type(<V>)
orValue|m|optional_type(<V>),<V>|<V>
patch|m|kubernetes.Semver|int
prefixLength|m|net.CIDR|int
quantity|g|string|kubernetes.Quantity
random.seededInt|g|int,int,string|int
random.seededString|g|int,string|string
replace|m|string,string,string|string
replace|m|string,string,string,int|string
reverse|m|list(<T>)|list(<T>)
reverse|m|string|string
semver|g|string|kubernetes.Semver
sign|g|kubernetes.Quantity|int
size|g|bytes|int
size|m|bytes|int
size|g|list(<A>)|int
size|m|list(<A>)|int
size|g|map(<A>, <B>)|int
size|m|map(<A>, <B>)|int
size|g|string|int
size|m|string|int
slice|m|list(<T>),int,int|list(<T>)
sort|m|list(int)|list(int)
sort|m|list(uint)|list(uint)
sort|m|list(double)|list(double)
sort|m|list(bool)|list(bool)
sort|m|list(google.protobuf.Duration)|list(google.protobuf.Duration)
sort|m|list(google.protobuf.Timestamp)|list(google.protobuf.Timestamp)
sort|m|list(string)|list(string)
sort|m|list(bytes)|list(bytes)
split|m|string,string|list(string)
split|m|string,string,int|list(string)
startsWith|m|string,string|bool
string|g|string|string
string|g|bool|string
string|g|bytes|string
string|g|double|string
string|g|google.protobuf.Duration|string
string|g|int|string
string|g|google.protobuf.Timestamp|string
string|g|uint|string
string|g|net.IP|string
string|g|net.CIDR|string
strings.quote|g|string|string
sub|m|kubernetes.Quantity,kubernetes.Quantity|kubernetes.Quantity
sub|m|kubernetes.Quantity,int|kubernetes.Quantity
substring|m|string,int|string
substring|m|string,int,int|string
sum|m|list(int)|int
sum|m|list(uint)|uint
sum|m|list(double)|double
sum|m|list(google.protobuf.Duration)|google.protobuf.Duration
timestamp|g|google.protobuf.Timestamp|google.protobuf.Timestamp
timestamp|g|int|google.protobuf.Timestamp
timestamp|g|string|google.protobuf.Timestamp
trim|m|string|string
type|g|<A>|type(<A>)
uint|g|uint|uint
uint|g|double|uint
uint|g|int|uint
uint|g|string|uint
unwrapOpt|m|list(optional_type(<V>))|list(<V>)
upperAscii|m|string|string
url|g|string|kubernetes.URL
value|m|optional_type(<V>)|<V>";

/// Function name → its overloads, in kro's declaration order.
pub static FUNCTIONS: LazyLock<BTreeMap<String, Vec<Overload>>> = LazyLock::new(|| {
    let mut table: BTreeMap<String, Vec<Overload>> = BTreeMap::new();
    for line in SIGNATURES.lines() {
        // Split from the right: the name itself may hold a `|` (`_||_`).
        let fields: Vec<&str> = line.rsplitn(4, '|').collect();
        let [result, args, kind, name] = fields.as_slice() else {
            continue;
        };
        let args: Vec<Type> = split_params(args).iter().map(|a| parse_type(a)).collect();
        let result = parse_type(result);
        let mut params = Vec::new();
        for t in args.iter().chain(std::iter::once(&result)) {
            collect_params(t, &mut params);
        }
        table
            .entry((*name).to_string())
            .or_default()
            .push(Overload {
                member: *kind == "m",
                args,
                result,
                params,
            });
    }
    table
});

fn collect_params(t: &Type, out: &mut Vec<String>) {
    match t {
        Type::Param(p) if !out.contains(p) => out.push(p.clone()),
        other => other
            .parameters()
            .into_iter()
            .for_each(|p| collect_params(p, out)),
    }
}

/// Whether kro's environment declares a function of this name (macros aside).
pub fn is_function(name: &str) -> bool {
    FUNCTIONS.contains_key(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_reads() {
        let add = &FUNCTIONS["_+_"];
        assert!(add.iter().any(|o| o.result == Type::String));
        let or_value = &FUNCTIONS["orValue"][0];
        assert!(or_value.member);
        assert_eq!(or_value.params, ["V"]);
        assert!(is_function("lists.setAtIndex"));
        assert!(is_function("omit"));
        assert!(FUNCTIONS["omit"][0].args.is_empty());
        assert_eq!(FUNCTIONS["_||_"][0].result, Type::Bool);
    }
}
